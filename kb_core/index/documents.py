"""Upsert of source documents with new / changed / unchanged / deleted accounting.

Nothing personal is kept at rest: a new or changed document is converted to Markdown and
scrubbed (:class:`Preparer`) before it is written, and only the scrubbed title and
Markdown, the content hash of the raw text and the scrubbing signature are stored. What
needs the raw text again (a scrubber upgrade) fetches it from the source
(``kb index rescrub``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from kb_core.errors import KbError
from kb_core.index.versions import retire_documents
from kb_core.models import SourceDocument, SyncCounts
from kb_core.ops.counters import bump
from kb_core.pii.scrubber import count_placeholders
from kb_core.text.formats import to_markdown

log = logging.getLogger(__name__)

Scrub = Callable[[Sequence[str]], list[str]]


@dataclass(frozen=True)
class Prepared:
    """A document as stored: scrubbed title and Markdown (None: conversion failed)."""

    title: str
    markdown: str | None
    error: str | None = None
    placeholders: int = 0


@dataclass(frozen=True)
class Preparer:
    """Converts source documents to Markdown and scrubs title and Markdown, in batches.

    ``scrub`` may fan out to worker processes (ParallelScrubber.scrub_many). Without it
    the text is only converted (external benchmark collections, tests of other stages);
    the knowledge base's sources always pass one unless KB_PII_SCRUB is off.
    ``signature`` changes whenever the scrubbing output could change: a stored document
    prepared with another signature is prepared again when the source delivers it.
    """

    scrub: Scrub | None = None
    signature: str = "off"

    @property
    def stamp(self) -> str:
        return f"pii-{self.signature}" if self.scrub is not None else "pii-off"

    def __call__(self, documents: Sequence[SourceDocument]) -> list[Prepared]:
        converted: list[tuple[str, str | None, str | None]] = []
        for doc in documents:
            try:
                converted.append((doc.title, to_markdown(doc.raw_format, doc.raw_body), None))
            except Exception as exc:  # a converter bug must not sink the whole refresh
                log.exception("cannot convert %s document %s", doc.source, doc.external_id)
                converted.append((doc.title, None, f"{type(exc).__name__}: {exc}"))
        texts = [text for title, markdown, _ in converted for text in (title, markdown or "")]
        safe = self.scrub(texts) if self.scrub is not None and texts else texts
        prepared = []
        for index, (_, markdown, error) in enumerate(converted):
            title, body = safe[2 * index], safe[2 * index + 1]
            placeholders = count_placeholders(title) + count_placeholders(body)
            placeholders -= count_placeholders(texts[2 * index]) + count_placeholders(
                texts[2 * index + 1]
            )
            prepared.append(
                Prepared(title, body if markdown is not None else None, error, placeholders)
            )
        return prepared


@dataclass
class PrepareReport:
    """What the preparation of one sync did (no values)."""

    prepared: int = 0
    placeholders: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (external_id, error)


# Documents are prepared (converted and scrubbed) this many at a time: large enough for
# a worker pool to pay off, small enough to bound memory on a first full sync.
PREPARE_BATCH = 200


def sync_source(
    conn: psycopg.Connection[Any],
    source: str,
    documents: Iterable[SourceDocument],
    *,
    full_listing: bool = True,
    live_ids: Collection[str] | None = None,
    cursor: dict[str, Any] | None = None,
    max_delete_fraction: float = 1.0,
    namespace: str = "kb",
    prepare: Preparer | None = None,
    report: PrepareReport | None = None,
) -> SyncCounts:
    """Write a source's documents and soft-delete the ones that are gone.

    Gone means: absent from ``documents`` when they are the source's complete listing
    (``full_listing``), or absent from ``live_ids`` when a separate id listing was made.
    With neither, nothing is deleted (an incremental fetch says nothing about the rest).
    A document that comes back after deletion is revived as changed. The whole sync,
    including the new ``cursor``, is one transaction: readers never see half of it, and
    a failed sync leaves the old cursor so the next run fetches the same changes again.

    A listing that would delete more than ``max_delete_fraction`` of the source's live
    documents (at least ten) is refused with :class:`MassDeletionError` and nothing is
    written: a token that lost access to a space lists it empty, which must not empty
    the knowledge base.

    Only documents that are new, changed, revived or prepared with another scrubbing
    signature are converted and scrubbed (``prepare``, before the transaction opens);
    the raw text is never written. A document that fails to convert keeps its stored
    row and is listed in ``report``.
    """
    prepare = prepare if prepare is not None else Preparer()
    report = report if report is not None else PrepareReport()
    docs = list(documents)
    for doc in docs:
        if doc.source != source:
            raise ValueError(f"document of source {doc.source!r} synced as {source!r}")
    stored = {
        row[0]: (row[1], row[2], row[3])
        for row in conn.execute(
            "SELECT external_id, content_hash, prepared_with, deleted_at IS NOT NULL "
            "FROM documents WHERE source = %s AND external_id = ANY(%s)",
            (source, [d.external_id for d in docs]),
        )
    }
    todo = [
        doc
        for doc in docs
        if stored.get(doc.external_id) != (doc.content_hash, prepare.stamp, False)
    ]
    prepared: dict[str, Prepared] = {}
    for start in range(0, len(todo), PREPARE_BATCH):
        batch = todo[start : start + PREPARE_BATCH]
        for doc, result in zip(batch, prepare(batch), strict=True):
            prepared[doc.external_id] = result
    new = changed = unchanged = 0
    seen: list[str] = []
    with conn.transaction():
        for doc in docs:
            seen.append(doc.external_id)
            ready = prepared.get(doc.external_id)
            if ready is None:
                unchanged += 1
                continue
            if ready.markdown is None:
                report.failures.append((doc.external_id, ready.error or "not converted"))
                if doc.external_id in stored:
                    unchanged += 1
                    continue
            report.prepared += 1
            report.placeholders += ready.placeholders
            row = conn.execute(
                """
                INSERT INTO documents (source, external_id, title, url, raw_format, markdown,
                                       markdown_hash, content_hash, prepared_with, metadata,
                                       source_updated_at, namespace)
                VALUES (%(source)s, %(external_id)s, %(title)s, %(url)s, %(raw_format)s,
                        %(markdown)s, %(markdown_hash)s, %(hash)s, %(stamp)s, %(metadata)s,
                        %(updated_at)s, %(namespace)s)
                ON CONFLICT (source, external_id) DO UPDATE SET
                    title = EXCLUDED.title, url = EXCLUDED.url,
                    raw_format = EXCLUDED.raw_format, markdown = EXCLUDED.markdown,
                    markdown_hash = EXCLUDED.markdown_hash, chunked_hash = NULL,
                    content_hash = EXCLUDED.content_hash,
                    prepared_with = EXCLUDED.prepared_with, metadata = EXCLUDED.metadata,
                    source_updated_at = EXCLUDED.source_updated_at,
                    updated_at = now(), deleted_at = NULL
                RETURNING (xmax = 0) AS inserted
                """,
                {
                    "source": source,
                    "external_id": doc.external_id,
                    "title": ready.title,
                    "url": doc.url,
                    "raw_format": doc.raw_format,
                    "markdown": ready.markdown,
                    "markdown_hash": doc.content_hash if ready.markdown is not None else None,
                    "hash": doc.content_hash,
                    "stamp": prepare.stamp,
                    "metadata": json.dumps(doc.metadata, ensure_ascii=False, default=str),
                    "updated_at": doc.updated_at,
                    "namespace": namespace,
                },
            ).fetchone()
            # A document scrubbed again under a new signature counts as changed: its
            # stored text was rewritten.
            if row is not None and row[0]:
                new += 1
            else:
                changed += 1
        deleted = 0
        keep = list(live_ids) if live_ids is not None else seen if full_listing else None
        if keep is not None:
            _guard_mass_deletion(conn, source, keep, max_delete_fraction)
            deleted = mark_deleted_except(conn, source, keep, namespace=namespace)
        if cursor is not None:
            save_cursor(conn, source, cursor)
        for change, count in (
            ("new", new),
            ("changed", changed),
            ("unchanged", unchanged),
            ("deleted", deleted),
        ):
            bump(conn, "kb_pipeline_synced_documents", {"source": source, "change": change}, count)
    return SyncCounts(new=new, changed=changed, unchanged=unchanged, deleted=deleted)


class MassDeletionError(KbError, RuntimeError):
    """A sync would delete an implausible share of a source; nothing was written."""


def _guard_mass_deletion(
    conn: psycopg.Connection[Any], source: str, keep: list[str], max_fraction: float
) -> None:
    row = conn.execute(
        """
        SELECT count(*) FILTER (WHERE NOT (external_id = ANY(%s))), count(*)
        FROM documents WHERE source = %s AND deleted_at IS NULL
        """,
        (keep, source),
    ).fetchone()
    going, live = (int(row[0]), int(row[1])) if row else (0, 0)
    if going >= 10 and going > max_fraction * live:
        raise MassDeletionError(
            f"{source}: the listing would delete {going} of {live} live documents "
            f"(more than {max_fraction:.0%}); refusing. If this is intended, raise "
            "KB_SYNC_MAX_DELETE_FRACTION for one run."
        )


def mark_deleted_except(
    conn: psycopg.Connection[Any], source: str, keep: list[str], *, namespace: str = "kb"
) -> int:
    """Soft-delete live documents of ``source`` not in ``keep``.

    Their chunks are retired in the candidate index version: the bot stops finding them
    when the candidate is promoted, not halfway through a refresh. The document row stays
    (deleted_at set) for history and for revival.
    """
    cur = conn.execute(
        """
        UPDATE documents SET deleted_at = now(), updated_at = now(), chunked_hash = NULL
        WHERE source = %s AND namespace = %s AND deleted_at IS NULL
          AND NOT (external_id = ANY(%s))
        RETURNING id
        """,
        (source, namespace, keep),
    )
    ids = [r[0] for r in cur.fetchall()]
    if ids:
        retire_documents(conn, ids, namespace)
    return len(ids)


def load_cursor(conn: psycopg.Connection[Any], source: str) -> dict[str, Any]:
    """The stored sync cursor of ``source`` ({} before its first sync)."""
    row = conn.execute("SELECT cursor FROM source_state WHERE source = %s", (source,)).fetchone()
    return dict(row[0]) if row else {}


def save_cursor(conn: psycopg.Connection[Any], source: str, cursor: dict[str, Any]) -> None:
    conn.execute(
        """
        INSERT INTO source_state (source, cursor) VALUES (%s, %s)
        ON CONFLICT (source) DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = now()
        """,
        (source, json.dumps(cursor)),
    )


def request_rescrub(conn: psycopg.Connection[Any], namespace: str = "kb") -> int:
    """Make the next sync fetch every document again and scrub it anew.

    The sync cursors are dropped (incremental sources list everything once more) and
    every document's scrubbing stamp is cleared, so what a source delivers is prepared
    again even when its content did not change; its chunks are rebuilt from the new
    text and the blocking check verifies them before promotion.
    """
    with conn.transaction():
        conn.execute("DELETE FROM source_state")
        marked = conn.execute(
            "UPDATE documents SET prepared_with = NULL WHERE namespace = %s AND deleted_at IS NULL",
            (namespace,),
        ).rowcount
    return marked
