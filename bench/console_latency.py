"""Benchmark: the agent console's page load and answer latency on the demo data.

The demo's knowledge base (sample Confluence spaces, resolved tickets, corrections and
articles, from the fakes) is indexed into a fresh embedded database; the bot's app then
serves the console on loopback, and a client times, per request, over real HTTP:
the empty page, the page with an answer (search + extractive draft + rendering), and
``POST /api/answer``. The first answer (which loads the PII scrubber's models) is
reported on its own. Prints one JSON object; nothing here is a test.

    .venv/bin/python -m bench.console_latency --rounds 20
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import machine

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    cut = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(cut[94], 1),
        "max_ms": round(ordered[-1], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="timed requests per question")
    args = parser.parse_args()

    import dagster as dg
    import httpx

    from bot_api.app import create_app
    from kb_assets.assets import INGEST_ASSETS, INGEST_CHECKS
    from kb_assets.definitions import build_resources
    from kb_cli.demo import DEMO_QUESTIONS
    from kb_core.db import open_database
    from kb_core.settings import PROJECT_ROOT, get_settings
    from kb_fakes.server import ServerThread
    from kb_fakes.services import start_fakes

    fakes = start_fakes()
    try:
        with tempfile.TemporaryDirectory(prefix="kb-bench-") as tmp:
            settings = (
                get_settings()
                .with_env(fakes.env())
                .with_overrides(
                    runtime={"data_dir": Path(tmp) / "data"},
                    files={"dir": PROJECT_ROOT / "samples" / "kb_files"},
                    console={"open": True},
                )
            )
            db = open_database(settings)
            resources = build_resources(settings, database_url=db.url)
            dg.materialize(
                [*INGEST_ASSETS, *INGEST_CHECKS],
                resources=resources,
                instance=dg.DagsterInstance.ephemeral(),
            )
            with db.connection() as conn:
                row = conn.execute(
                    "SELECT chunks FROM index_versions WHERE status = 'active'"
                ).fetchone()
            chunks = int(row[0]) if row else 0
            timings: dict[str, list[float]] = {"page": [], "answer_page": [], "api_answer": []}
            with (
                ServerThread(create_app(settings), lifespan="on") as server,
                httpx.Client(base_url=server.url, timeout=60) as client,
            ):

                def timed(name: str, method: str, url: str, **kwargs: object) -> float:
                    started = time.perf_counter()
                    response = client.request(method, url, **kwargs)  # type: ignore[arg-type]
                    elapsed = (time.perf_counter() - started) * 1000
                    response.raise_for_status()
                    if name:
                        timings[name].append(elapsed)
                    return elapsed

                first_answer_ms = timed("", "GET", "/", params={"q": DEMO_QUESTIONS[0]})
                for _ in range(args.rounds):
                    timed("page", "GET", "/")
                    for question in DEMO_QUESTIONS:
                        timed("answer_page", "GET", "/", params={"q": question})
                        timed("api_answer", "POST", "/api/answer", json={"question": question})
    finally:
        fakes.stop()
    print(
        json.dumps(
            {
                "benchmark": "console_latency",
                "machine": machine(),
                "indexed_chunks": chunks,
                "answer_mode": "extractive (no LLM)",
                "first_answer_ms": round(first_answer_ms, 1),
                **{name: _percentiles(samples) for name, samples in timings.items()},
            },
            ensure_ascii=False,
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
