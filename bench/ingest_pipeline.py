"""Benchmark: the whole refresh pipeline on N Confluence pages, stage by stage.

A fake Confluence (real HTTP, the real client, paging at the server cap) holds N pages
made from the sample pages (each with its own id and title, so no chunk can borrow
another's embedding). The real Dagster assets and checks then run three refreshes into a
fresh embedded database with the packaged embedder and the PII scrubber as configured:

1. full: fetch → Markdown → scrub + chunk → PII re-scan → embed → evaluate → promote;
2. nothing changed since (1);
3. 1 % of the pages edited since (2).

For each: seconds, pages/s, and where the time went (each Dagster step, from the run's
event log), the work done (documents fetched, chunks written and embedded), and the
peak resident memory of this process (it executes the run in-process, as a run worker
would) during that refresh, plus the largest PII worker process.

The evaluation gate is off: the golden set asks about the sample pages, not about N
copies of them, so its scores here mean nothing; evaluation still runs and is timed.

    .venv/bin/python -m bench.ingest_pipeline --pages 1000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import emit, machine, peak_rss_mib, process_memory_mib

# Stage names for the Dagster steps, in pipeline order.
STAGES = {
    "raw_confluence_pages": "fetch",
    "cleaned_markdown": "markdown",
    "pii_free_chunks": "scrub + chunk",
    "pii_free_chunks_no_personal_data_in_chunks": "PII re-scan",
    "chunk_embeddings": "embed",
    "rag_eval": "evaluate",
    "rag_eval_candidate_passes_eval": "eval gate",
    "promoted_index": "promote",
}


def _reset_peak_rss() -> bool:
    """Start a new peak (VmHWM) for this process; Linux only."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def make_pages(count: int) -> list[Any]:
    """The sample pages as they are (so the golden set's Confluence questions have their
    pages and evaluation does real work), then copies, each with its own id and title,
    modified ten minutes apart (as an old wiki's edits spread over time)."""
    from kb_fakes.confluence import ConfluenceStore, FakePage

    samples = list(ConfluenceStore.from_samples().pages.values())
    base = datetime(2026, 1, 1, tzinfo=UTC)
    pages = samples[:count]
    for i in range(len(pages), count):
        sample = samples[i % len(samples)]
        pages.append(
            FakePage(
                id=str(7_000_000 + i),
                space=sample.space,
                title=f"{sample.title} (копия {i})",
                body=sample.body + f"<p>Статья {i}: проверено в версии {i % 7}.{i % 11}.</p>",
                last_modified=base + timedelta(minutes=10 * i),
            )
        )
    return pages


def step_seconds(instance: Any, run_id: str) -> dict[str, float]:
    """Seconds of each step of a run, from its start and success events."""
    started: dict[str, float] = {}
    seconds: dict[str, float] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or entry.step_key is None:
            continue
        if event.event_type_value == "STEP_START":
            started[entry.step_key] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and (
            entry.step_key in started
        ):
            seconds[entry.step_key] = entry.timestamp - started[entry.step_key]
    return seconds


def run(pages: int, changed_share: float = 0.01) -> dict[str, Any]:
    import dagster as dg

    from kb_assets.assets import INGEST_ASSETS, INGEST_CHECKS
    from kb_assets.definitions import build_resources
    from kb_core.db import open_database
    from kb_core.settings import get_settings
    from kb_fakes.confluence import ConfluenceStore, create_confluence_app
    from kb_fakes.server import ServerThread

    store = ConfluenceStore(make_pages(pages))
    report: dict[str, Any] = {"machine": machine(), "pages": pages}
    with (
        tempfile.TemporaryDirectory(prefix="kb-bench-") as tmp,
        ServerThread(create_confluence_app(store, token="t", max_limit=50)) as server,
    ):
        # Only the fake Confluence, whatever the shell has configured.
        settings = (
            get_settings()
            .with_overrides(db={"url": None}, pyrus={"login": None}, files={"dir": None})
            .with_env(
                {
                    "KB_CONFLUENCE_URL": server.url,
                    "KB_CONFLUENCE_TOKEN": "t",
                    "KB_CONFLUENCE_SPACES": ",".join(
                        sorted({p.space for p in store.pages.values()})
                    ),
                    "KB_EVAL_GATE": "false",
                    "KB_DATA_DIR": tmp,
                }
            )
        )
        report["pii_workers"] = settings.pii.workers
        report["embed_threads"] = settings.embedding.threads
        db = open_database(settings)
        resources = build_resources(settings, database_url=db.url)
        instance = dg.DagsterInstance.ephemeral()

        def refresh(name: str) -> dict[str, Any]:
            _reset_peak_rss()
            started = time.perf_counter()
            result = dg.materialize(
                [*INGEST_ASSETS, *INGEST_CHECKS], resources=resources, instance=instance
            )
            elapsed = time.perf_counter() - started
            if not result.success:
                raise RuntimeError(f"{name} refresh failed")
            meta = {
                node: {
                    k: v.value
                    for m in result.asset_materializations_for_node(node)
                    for k, v in m.metadata.items()
                }
                for node in (
                    "raw_confluence_pages",
                    "pii_free_chunks",
                    "chunk_embeddings",
                    "rag_eval",
                )
            }
            steps = step_seconds(instance, result.run_id)
            stages = {label: round(steps.get(key, 0.0), 2) for key, label in STAGES.items()}
            stages["other (run start, skipped sources)"] = round(
                max(0.0, elapsed - sum(steps.get(k, 0.0) for k in STAGES)), 2
            )
            return {
                "seconds": round(elapsed, 2),
                "pages_per_s": round(pages / elapsed, 1),
                "sync_mode": meta["raw_confluence_pages"].get("mode"),
                "fetched": meta["raw_confluence_pages"].get("fetched"),
                "chunks_written": meta["pii_free_chunks"].get("chunks_written"),
                "embedded": meta["chunk_embeddings"].get("embedded"),
                "candidate_evaluated": bool(meta["rag_eval"].get("evaluated")),
                "stages_s": stages,
                "peak_rss_mib": process_memory_mib()["peak"],
            }

        report["full"] = refresh("full")
        report["no_change"] = refresh("no-change")
        # Edits after the last sync, as Confluence users make them.
        changed = max(1, round(pages * changed_share))
        for page in list(store.pages.values())[:: max(1, pages // changed)][:changed]:
            store.upsert(page.id, body=page.body + "<p>Дополнено: новый порядок действий.</p>")
        report["changed_pages"] = changed
        report["one_percent_changed"] = refresh("1% changed")
        report["peak_rss_of_run_mib"] = peak_rss_mib()
        with db.connection() as conn:
            report["chunks_in_index"] = conn.execute(
                "SELECT chunks FROM index_versions WHERE status = 'active'"
            ).fetchone()[0]
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--changed", type=float, default=0.01, help="share of pages edited")
    args = parser.parse_args()
    emit(run(args.pages, args.changed))


if __name__ == "__main__":
    main()
