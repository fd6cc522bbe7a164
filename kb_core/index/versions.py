"""Index versions: one active version per namespace for readers, one candidate for writers.

Writers (source sync, chunking, embedding) put every change into the namespace's open
candidate, which they create on first need; readers resolve the active version once per
query and see exactly its rows (:func:`visible`). :func:`promote` checks the candidate's
gates, computes its BM25 statistics and switches the active pointer in one transaction,
so the bot sees the old version or the new one, never a half. Rows are shared between
versions (see sql/0005_index_versions.sql); :func:`purge_retired` removes what no kept
version can see.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

from kb_core.errors import KbError

log = logging.getLogger(__name__)


class NoActiveVersion(KbError, LookupError):
    """Nothing has been promoted in the namespace yet."""


class PromotionRefused(KbError, RuntimeError):
    """A promotion gate failed; the active version is unchanged."""

    def __init__(self, version_id: int, failed: dict[str, str]) -> None:
        self.version_id = version_id
        self.failed = failed
        reasons = "; ".join(f"{gate}: {why}" for gate, why in failed.items())
        super().__init__(f"candidate version {version_id} not promoted: {reasons}")


@dataclass(frozen=True)
class VersionInfo:
    id: int
    namespace: str
    status: str
    base_version: int | None
    embedding_model: str | None
    dimension: int | None
    chunks: int | None
    documents: int | None
    avg_length: float | None
    created_at: datetime
    promoted_at: datetime | None
    report: dict[str, Any] = field(default_factory=dict)


_COLUMNS = (
    "id, namespace, status, base_version, embedding_model, dimension, chunks, documents, "
    "avg_length, created_at, promoted_at, report"
)


def _info(row: tuple[Any, ...]) -> VersionInfo:
    names = _COLUMNS.replace(" ", "").split(",")
    values = dict(zip(names, row, strict=True))
    values["report"] = dict(values["report"] or {})
    return VersionInfo(**values)


def visible(alias: str, version: sql.Composable | int) -> sql.Composable:
    """The predicate 'row of ``alias`` is part of ``version``' (a literal or placeholder)."""
    v = version if isinstance(version, sql.Composable) else sql.Literal(version)
    a = sql.Identifier(alias)
    return sql.SQL(
        "({a}.valid_from <= {v} AND ({a}.valid_to IS NULL OR {a}.valid_to > {v}))"
    ).format(a=a, v=v)


def get_version(conn: psycopg.Connection[Any], version_id: int) -> VersionInfo:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM index_versions WHERE id = %s", (version_id,)
    ).fetchone()
    if row is None:
        raise LookupError(f"no index version {version_id}")
    return _info(row)


def list_versions(conn: psycopg.Connection[Any], namespace: str = "kb") -> list[VersionInfo]:
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM index_versions WHERE namespace = %s ORDER BY id DESC",
        (namespace,),
    ).fetchall()
    return [_info(row) for row in rows]


def active_version(conn: psycopg.Connection[Any], namespace: str = "kb") -> VersionInfo:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM index_versions WHERE namespace = %s AND status = 'active'",
        (namespace,),
    ).fetchone()
    if row is None:
        raise NoActiveVersion(f"no index version of {namespace!r} has been promoted yet")
    return _info(row)


def candidate_version(conn: psycopg.Connection[Any], namespace: str = "kb") -> VersionInfo | None:
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM index_versions WHERE namespace = %s AND status = 'candidate'",
        (namespace,),
    ).fetchone()
    return _info(row) if row else None


def open_candidate(conn: psycopg.Connection[Any], namespace: str = "kb") -> int:
    """The namespace's candidate version, created (on top of the active one) when missing.

    Concurrent writers get the same candidate: the unique index on open candidates makes
    the loser of a race re-read the winner's row. Called inside the writer's transaction,
    it holds a shared lock on the namespace's versions until that transaction ends, so a
    promotion (which takes the lock exclusively) waits for it, and a write that began
    before a promotion can never land in the version just made active.
    """
    conn.execute(
        "SELECT pg_advisory_xact_lock_shared(hashtext('kb-index-versions:' || %s))", (namespace,)
    )
    existing = candidate_version(conn, namespace)
    if existing is not None:
        return existing.id
    row = conn.execute(
        """
        INSERT INTO index_versions (namespace, status, base_version)
        SELECT %(ns)s, 'candidate',
               (SELECT id FROM index_versions WHERE namespace = %(ns)s AND status = 'active')
        ON CONFLICT DO NOTHING
        RETURNING id
        """,
        {"ns": namespace},
    ).fetchone()
    if row is not None:
        log.info("opened candidate index version %s of %r", row[0], namespace)
        return int(row[0])
    created = candidate_version(conn, namespace)
    assert created is not None
    return created.id


def retire_chunks(conn: psycopg.Connection[Any], chunk_ids: list[int], candidate: int) -> int:
    """Take chunks out of the candidate: rows only the candidate saw are deleted, shared
    rows closed (the active version keeps them until the candidate is promoted)."""
    if not chunk_ids:
        return 0
    conn.execute(
        "DELETE FROM chunks WHERE id = ANY(%s) AND valid_from = %s", (chunk_ids, candidate)
    )
    closed = conn.execute(
        "UPDATE chunks SET valid_to = %s WHERE id = ANY(%s) AND valid_to IS NULL RETURNING id",
        (candidate, chunk_ids),
    ).fetchall()
    if closed:
        conn.execute(
            "UPDATE chunk_terms SET valid_to = %s WHERE chunk_id = ANY(%s)",
            (candidate, [r[0] for r in closed]),
        )
    return len(chunk_ids)


def retire_documents(
    conn: psycopg.Connection[Any], document_ids: list[int], namespace: str = "kb"
) -> int:
    """Retire every live chunk of the documents in the namespace's candidate."""
    if not document_ids:
        return 0
    ids = [
        int(r[0])
        for r in conn.execute(
            "SELECT id FROM chunks WHERE document_id = ANY(%s) AND valid_to IS NULL",
            (document_ids,),
        )
    ]
    if not ids:
        return 0
    return retire_chunks(conn, ids, open_candidate(conn, namespace))


@dataclass(frozen=True)
class PromotionResult:
    version: VersionInfo
    previous: int | None
    gates: dict[str, Any]


def _gates(
    conn: psycopg.Connection[Any], candidate: VersionInfo, require_pii_check: bool
) -> tuple[dict[str, Any], dict[str, str]]:
    """Facts about the candidate and the gates they fail (empty: promotable)."""
    v = candidate.id
    row = conn.execute(
        sql.SQL(
            """
            SELECT count(*),
                   count(*) FILTER (WHERE c.embedding IS NULL
                                    OR c.embedding_model IS DISTINCT FROM {model}),
                   count(*) FILTER (WHERE c.pii_checked_at IS NULL),
                   count(DISTINCT c.document_id)
            FROM chunks c WHERE c.namespace = {ns} AND {visible}
            """
        ).format(
            model=sql.Literal(candidate.embedding_model),
            ns=sql.Literal(candidate.namespace),
            visible=visible("c", v),
        )
    ).fetchone()
    assert row is not None
    chunks, unembedded, unchecked, documents = (int(x) for x in row)
    facts: dict[str, Any] = {
        "chunks": chunks,
        "documents": documents,
        "unembedded_chunks": unembedded,
        "pii_unchecked_chunks": unchecked,
        "embedding_model": candidate.embedding_model,
    }
    failed: dict[str, str] = {}
    if candidate.embedding_model is None:
        failed["embedded"] = "the candidate has not been embedded"
    elif unembedded:
        failed["embedded"] = f"{unembedded} chunks have no vector from {candidate.embedding_model}"
    if unchecked and require_pii_check:
        failed["pii_checked"] = f"{unchecked} chunks have not passed the personal-data re-scan"
    if chunks == 0:
        failed["not_empty"] = "the candidate has no chunks"
    return facts, failed


def promote(
    conn: psycopg.Connection[Any],
    namespace: str = "kb",
    *,
    require_pii_check: bool = True,
    extra_report: dict[str, Any] | None = None,
) -> PromotionResult | None:
    """Make the namespace's candidate the active version, if its gates pass.

    Returns None when there is no candidate (nothing changed since the last promotion).
    Gates: every chunk embedded with the version's model, every chunk re-scanned for
    personal data (``require_pii_check``; off only for public benchmark text), not empty.
    Raises :class:`PromotionRefused` when a gate fails; the candidate stays open, so the
    next refresh continues it. Statistics and the switch are one transaction: a reader
    resolves either the old version with its statistics or the new one with its own.
    """
    with conn.transaction():
        # Waits for writers in flight (see open_candidate) and other promotions; readers
        # are never blocked.
        conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext('kb-index-versions:' || %s))", (namespace,)
        )
        candidate = candidate_version(conn, namespace)
        if candidate is None:
            return None
        facts, failed = _gates(conn, candidate, require_pii_check)
        if not failed:
            return _switch(conn, candidate, facts, extra_report)
    # Outside the transaction, so the refusal's reasons stay on record.
    conn.execute(
        "UPDATE index_versions SET report = %s WHERE id = %s",
        (json.dumps({"facts": facts, "failed": failed}), candidate.id),
    )
    raise PromotionRefused(candidate.id, failed)


def _switch(
    conn: psycopg.Connection[Any],
    candidate: VersionInfo,
    facts: dict[str, Any],
    extra_report: dict[str, Any] | None,
) -> PromotionResult:
    """Statistics and the pointer switch; runs inside promote()'s transaction."""
    namespace = candidate.namespace
    write_term_stats(conn, candidate)
    length_row = conn.execute(
        sql.SQL(
            "SELECT coalesce(avg(c.lexical_length), 0) FROM chunks c "
            "WHERE c.namespace = {ns} AND {visible}"
        ).format(ns=sql.Literal(namespace), visible=visible("c", candidate.id))
    ).fetchone()
    previous = conn.execute(
        "UPDATE index_versions SET status = 'retired', retired_at = now() "
        "WHERE namespace = %s AND status = 'active' RETURNING id",
        (namespace,),
    ).fetchone()
    report = {"facts": facts, "failed": {}, **(extra_report or {})}
    conn.execute(
        """
        UPDATE index_versions SET status = 'active', promoted_at = now(), chunks = %s,
               documents = %s, avg_length = %s, report = %s
        WHERE id = %s
        """,
        (
            facts["chunks"],
            facts["documents"],
            float(length_row[0]) if length_row else 0.0,
            json.dumps(report, default=str),
            candidate.id,
        ),
    )
    promoted = get_version(conn, candidate.id)
    log.info("promoted index version %s of %r", candidate.id, namespace)
    return PromotionResult(promoted, int(previous[0]) if previous else None, facts)


def write_term_stats(conn: psycopg.Connection[Any], candidate: VersionInfo) -> None:
    """Document frequencies of the candidate: the base's, plus what it added, minus what
    it closed. Without a base (or a base whose figures were purged) they are counted."""
    v, base = candidate.id, candidate.base_version
    conn.execute("DELETE FROM version_terms WHERE version_id = %s", (v,))
    base_has_terms = base is not None and (
        conn.execute(
            "SELECT 1 FROM version_terms WHERE version_id = %s LIMIT 1", (base,)
        ).fetchone()
        is not None
    )
    if not base_has_terms:
        conn.execute(
            sql.SQL(
                """
                INSERT INTO version_terms (version_id, term, df)
                SELECT {v}, t.term, count(*) FROM chunk_terms t
                WHERE t.namespace = {ns} AND {visible}
                GROUP BY t.term
                """
            ).format(v=sql.Literal(v), ns=sql.Literal(candidate.namespace), visible=visible("t", v))
        )
        return
    conn.execute(
        """
        INSERT INTO version_terms (version_id, term, df)
        SELECT %(v)s, term, sum(delta) FROM (
            SELECT term, df AS delta FROM version_terms WHERE version_id = %(base)s
            UNION ALL
            SELECT term, 1 FROM chunk_terms WHERE namespace = %(ns)s AND valid_from = %(v)s
            UNION ALL
            SELECT term, -1 FROM chunk_terms WHERE namespace = %(ns)s AND valid_to = %(v)s
                                                   AND valid_from <= %(base)s
        ) changes
        GROUP BY term HAVING sum(delta) > 0
        """,
        {"v": v, "base": base, "ns": candidate.namespace},
    )


@dataclass(frozen=True)
class PurgeResult:
    versions: int
    chunks: int


def purge_retired(
    conn: psycopg.Connection[Any], namespace: str = "kb", *, keep: int = 2
) -> PurgeResult:
    """Delete rows no kept version can see: the active version, the candidate and the
    ``keep`` most recent retired ones (rollback targets) are kept."""
    with conn.transaction():
        kept = [
            int(r[0])
            for r in conn.execute(
                """
                (SELECT id FROM index_versions WHERE namespace = %(ns)s
                   AND status IN ('active', 'candidate'))
                UNION ALL
                (SELECT id FROM index_versions WHERE namespace = %(ns)s AND status = 'retired'
                 ORDER BY id DESC LIMIT %(keep)s)
                """,
                {"ns": namespace, "keep": keep},
            )
        ]
        if not kept:
            return PurgeResult(0, 0)
        oldest = min(kept)
        versions = conn.execute(
            """
            UPDATE index_versions SET status = 'purged'
            WHERE namespace = %s AND status = 'retired' AND id < %s RETURNING id
            """,
            (namespace, oldest),
        ).fetchall()
        if versions:
            conn.execute(
                "DELETE FROM version_terms WHERE version_id = ANY(%s)", ([r[0] for r in versions],)
            )
        chunks = conn.execute(
            "DELETE FROM chunks WHERE namespace = %s AND valid_to IS NOT NULL AND valid_to <= %s",
            (namespace, oldest),
        ).rowcount
    return PurgeResult(len(versions), chunks)
