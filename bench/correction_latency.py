"""Benchmark: from an approved correction to a promoted index, on the demo setup.

The demo's knowledge base (sample Confluence spaces, resolved tickets, corrections and
articles, from the fakes) is indexed into a fresh embedded database. Then an agent
corrects a bot answer on a new ticket, the bot files the correction, a knowledge owner
approves it, and the clock runs: the corrections sensor's tick, then the refresh run it
starts (scrub, index, evaluate, promote). The sensor polls every KB_CORRECTIONS_POLL_S
seconds, so in production the wait for the next tick comes on top (at most that long).
Prints one JSON object; nothing here is a test.

    .venv/bin/python -m bench.correction_latency
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from bench.common import machine

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

SUBJECT = "Звуковой сигнал о новой задаче в клиенте для Linux"
DESCRIPTION = "Работаем на Linux. Как включить звуковой сигнал, когда приходит новая задача?"
CORRECTED = (
    "Сейчас десктопного клиента для Linux нет. Откройте веб-версию в браузере и "
    "разрешите сайту уведомления со звуком в настройках браузера."
)
AGENT = {"id": 1104, "type": "user"}
OWNER = {"id": 1106, "type": "user"}
APPROVED = {"id": 6, "value": {"choice_ids": [1], "choice_names": ["Одобрено"]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()

    import dagster as dg

    from kb_assets.assets import INGEST_ASSETS, INGEST_CHECKS
    from kb_assets.definitions import build_resources
    from kb_assets.sensors import corrections_refresh, corrections_sensor
    from kb_core.bot import jobs
    from kb_core.bot.context import bot_context
    from kb_core.bot.worker import process_job
    from kb_core.db import embedded, open_database
    from kb_core.index.versions import active_version
    from kb_core.settings import PROJECT_ROOT, get_settings
    from kb_fakes.services import SAMPLE_CORRECTIONS_FORM, start_fakes

    fakes = start_fakes()
    store = fakes.pyrus_store
    with tempfile.TemporaryDirectory(prefix="kb-bench-") as tmp:
        settings = (
            get_settings()
            .with_env(fakes.env())
            .with_overrides(
                runtime={"data_dir": Path(tmp) / "data"},
                files={"dir": PROJECT_ROOT / "samples" / "kb_files"},
            )
        )
        db = open_database(settings)
        resources = build_resources(settings, database_url=db.url)
        instance = dg.DagsterInstance.ephemeral()
        started = time.perf_counter()
        dg.materialize([*INGEST_ASSETS, *INGEST_CHECKS], resources=resources, instance=instance)
        first_index_s = time.perf_counter() - started

        def work_off() -> None:
            ctx = bot_context(settings)
            with db.connection() as conn:
                while (job := jobs.claim(conn, "bench", 60)) is not None:
                    process_job(conn, job, ctx)
                    jobs.complete(conn, job)

        ticket = int(
            store.create_task(
                {
                    "form_id": 321,
                    "fields": [
                        {"id": 1, "code": "u_subject", "value": SUBJECT},
                        {"id": 2, "code": "u_description", "value": DESCRIPTION},
                    ],
                    "text": DESCRIPTION,
                }
            )["id"]
        )
        comment = store.add_comment(
            ticket, AGENT, {"text": f"@Бот исправление: {CORRECTED}", "mentions": [9000]}
        )
        with db.connection() as conn:
            jobs.enqueue(conn, ticket, int(comment["id"]), "correction")
        work_off()
        filed = [c for c in store.created if c["request"]["form_id"] == SAMPLE_CORRECTIONS_FORM]
        correction = filed[0]["task_id"]
        with db.connection() as conn:
            before = active_version(conn).id

        store.add_comment(
            correction, OWNER, {"text": "Ок", "field_updates": [APPROVED], "action": "finished"}
        )
        approved = time.perf_counter()
        request = corrections_sensor(
            dg.build_sensor_context(instance=instance, resources=resources)
        )
        sensor_s = time.perf_counter() - approved
        assert isinstance(request, dg.RunRequest), request
        definitions = dg.Definitions(
            assets=INGEST_ASSETS,
            asset_checks=INGEST_CHECKS,
            jobs=[corrections_refresh],
            resources=resources,
            executor=dg.in_process_executor,
        )
        run_started = time.perf_counter()
        result = definitions.resolve_job_def("corrections_refresh").execute_in_process(
            instance=instance, tags=request.tags
        )
        run_s = time.perf_counter() - run_started
        total_s = time.perf_counter() - approved
        with db.connection() as conn:
            after = active_version(conn)
            chunks = after.chunks
        # The same question again, now answered from the correction.
        comment = store.add_comment(ticket, AGENT, {"text": "@Бот ещё раз", "mentions": [9000]})
        with db.connection() as conn:
            jobs.enqueue(conn, ticket, int(comment["id"]), "mention")
        work_off()
        with db.connection() as conn:
            retrieved = conn.execute(
                "SELECT retrieved FROM bot_interactions WHERE task_id = %s ORDER BY id DESC "
                "LIMIT 1",
                (ticket,),
            ).fetchone()[0]
        embedded.stop(settings.runtime.data_dir)
    fakes.stop()
    print(
        json.dumps(
            {
                "machine": machine(),
                "index_chunks": chunks,
                "first_full_index_s": round(first_index_s, 1),
                "sensor_tick_s": round(sensor_s, 2),
                "refresh_run_s": round(run_s, 1),
                "approved_to_promoted_s": round(total_s, 1),
                "plus_poll_interval_at_most_s": settings.schedule.corrections_poll_s,
                "run_success": result.success,
                "promoted": f"{before} -> {after.id}",
                "first_source_after": f"{retrieved[0]['source']}:{retrieved[0]['external_id']}",
                "correction_task": correction,
            },
            ensure_ascii=False,
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
