"""The sample knowledge base, indexed in a throw-away embedded database, for evaluations.

Syncs Confluence pages and resolved tickets from the fakes (seeded with ``samples/``),
then converts, chunks (scrubbing personal data unless told not to) and embeds them in a
database of their own, so evaluations never touch the user's knowledge base.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

from kb_core.db import apply_migrations, connect, embedded
from kb_core.db.connection import ensure_database
from kb_core.embeddings import make_embedder
from kb_core.embeddings.base import Embedder
from kb_core.index.documents import Preparer, sync_source
from kb_core.index.stages import chunk_pending, convert_pending, embed_pending
from kb_core.index.versions import promote
from kb_core.models import SourceDocument
from kb_core.pii.configured import ParallelScrubber, config_from_settings, config_signature
from kb_core.settings import PROJECT_ROOT, Settings
from kb_core.sources import configured
from kb_core.sources.confluence import fetch_changes
from kb_core.sources.cursor import SyncCursor
from kb_core.sources.pyrus_sync import fetch_corrections, fetch_tickets
from kb_core.sources.pyrus_tasks import CORRECTIONS_SOURCE
from kb_core.text.chunking import ChunkerConfig
from kb_fakes.services import (
    SAMPLE_CORRECTIONS_FORM,
    SAMPLE_HELPDESK_FORM,
    SAMPLE_SPACES,
    start_fakes,
)


def sample_documents(base: Settings) -> dict[str, list[SourceDocument]]:
    """The sample sources' documents (pages, tickets, corrections), fetched through the
    real connectors (``base``: the caller's settings, pointed at the fakes here)."""
    fakes = start_fakes()
    try:
        settings = base.with_env(fakes.env())
        now = datetime.now(UTC)
        with configured.confluence_client(settings) as client:
            spaces = SAMPLE_SPACES.split(",")
            pages = fetch_changes(client, spaces, SyncCursor(), now=now).pages
        with configured.pyrus_client(settings) as client:
            tickets = fetch_tickets(
                client,
                [SAMPLE_HELPDESK_FORM],
                configured.ticket_builder(settings),
                SyncCursor(),
                now=now,
            ).documents
            corrections = fetch_corrections(
                client, SAMPLE_CORRECTIONS_FORM, configured.correction_builder(settings)
            )
    finally:
        fakes.stop()
    return {
        "confluence": [p.as_document() for p in pages],
        "pyrus": tickets,
        CORRECTIONS_SOURCE: corrections,
    }


@contextmanager
def sample_index(
    *, scrub: bool = True, name: str = "sample", settings: Settings
) -> Iterator[tuple[psycopg.Connection[Any], Embedder]]:
    """A connection to a freshly indexed sample knowledge base, and its embedder."""

    documents = sample_documents(settings)
    pii = config_from_settings(settings)
    embedder = make_embedder(
        settings.embedding.provider,
        settings.embedding.threads,
        settings.embedding.packaged_batch_size,
        settings=settings,
    )
    with tempfile.TemporaryDirectory(prefix="kb-eval-") as tmp:
        server = embedded.start(Path(tmp))
        ensure_database(server.uri, name)
        url = make_conninfo(server.uri, dbname=name)
        apply_migrations(url, PROJECT_ROOT / "sql")
        with connect(url) as conn, ParallelScrubber(pii, settings.pii.workers) as scrubber:
            # Scrubbed before storing, as the pipeline does (kb_core.index.documents).
            prepare = Preparer(scrubber.scrub_many, config_signature(pii)) if scrub else Preparer()
            for source, docs in documents.items():
                sync_source(conn, source, docs, prepare=prepare)
            convert_pending(conn)
            chunk_pending(
                conn, ChunkerConfig(size=settings.chunking.size, overlap=settings.chunking.overlap)
            )
            embed_pending(conn, embedder)
            # An evaluation copy: the PII re-scan gate belongs to the production pipeline.
            promote(conn, require_pii_check=False)
            yield conn, embedder
        embedded.stop(Path(tmp))
