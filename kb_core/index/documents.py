"""Upsert of source documents with new / changed / unchanged / deleted accounting."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable
from typing import Any

import psycopg

from kb_core.index.versions import retire_documents
from kb_core.models import SourceDocument, SyncCounts
from kb_core.ops.counters import bump


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
    """
    new = changed = unchanged = 0
    seen: list[str] = []
    with conn.transaction():
        for doc in documents:
            if doc.source != source:
                raise ValueError(f"document of source {doc.source!r} synced as {source!r}")
            seen.append(doc.external_id)
            row = conn.execute(
                """
                INSERT INTO documents (source, external_id, title, url, raw_format, raw_body,
                                       content_hash, metadata, source_updated_at, namespace)
                VALUES (%(source)s, %(external_id)s, %(title)s, %(url)s, %(raw_format)s,
                        %(raw_body)s, %(hash)s, %(metadata)s, %(updated_at)s, %(namespace)s)
                ON CONFLICT (source, external_id) DO UPDATE SET
                    title = EXCLUDED.title, url = EXCLUDED.url,
                    raw_format = EXCLUDED.raw_format, raw_body = EXCLUDED.raw_body,
                    content_hash = EXCLUDED.content_hash, metadata = EXCLUDED.metadata,
                    source_updated_at = EXCLUDED.source_updated_at,
                    updated_at = now(), deleted_at = NULL
                WHERE documents.content_hash IS DISTINCT FROM EXCLUDED.content_hash
                   OR documents.deleted_at IS NOT NULL
                RETURNING (xmax = 0) AS inserted
                """,
                {
                    "source": source,
                    "external_id": doc.external_id,
                    "title": doc.title,
                    "url": doc.url,
                    "raw_format": doc.raw_format,
                    "raw_body": doc.raw_body,
                    "hash": doc.content_hash,
                    "metadata": json.dumps(doc.metadata, ensure_ascii=False, default=str),
                    "updated_at": doc.updated_at,
                    "namespace": namespace,
                },
            ).fetchone()
            if row is None:
                unchanged += 1
            elif row[0]:
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


class MassDeletionError(RuntimeError):
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
