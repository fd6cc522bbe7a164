"""Weekly upkeep of the index: purge what no kept version sees, vacuum, rebuild indexes.

Daily refreshes close rows instead of deleting them (the active version may still read
them), and HNSW and B-tree indexes bloat with churn. Purging, VACUUM ANALYZE and
REINDEX CONCURRENTLY keep search latency flat; none of them blocks readers. Needs an
autocommit connection: VACUUM and REINDEX CONCURRENTLY cannot run in a transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from kb_core.index.versions import purge_retired

TABLES = ("documents", "chunks", "chunk_terms", "version_terms", "index_versions")


@dataclass
class MaintenanceReport:
    versions_purged: int = 0
    chunks_purged: int = 0
    reindexed: list[str] = field(default_factory=list)
    seconds: float = 0.0


def search_indexes(conn: psycopg.Connection[Any]) -> list[str]:
    """The indexes searches read: every per-model HNSW index and the postings index."""
    rows = conn.execute(
        """
        SELECT indexname FROM pg_indexes
        WHERE tablename IN ('chunks', 'chunk_terms')
          AND (indexname LIKE 'chunks_embedding_hnsw_%' OR indexname = 'chunk_terms_postings')
        ORDER BY indexname
        """
    ).fetchall()
    return [str(r[0]) for r in rows]


def run_maintenance(
    conn: psycopg.Connection[Any],
    *,
    keep_versions: int = 2,
    reindex: bool = True,
    log: Callable[[str], None] = lambda message: None,
) -> MaintenanceReport:
    if not conn.autocommit:
        raise ValueError("maintenance needs an autocommit connection")
    started = time.perf_counter()
    report = MaintenanceReport()
    namespaces = [str(r[0]) for r in conn.execute("SELECT DISTINCT namespace FROM index_versions")]
    for namespace in namespaces:
        purged = purge_retired(conn, namespace, keep=keep_versions)
        report.versions_purged += purged.versions
        report.chunks_purged += purged.chunks
        log(f"{namespace}: purged {purged.chunks} retired chunks of {purged.versions} versions")
    for table in TABLES:
        conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(table)))
    log("VACUUM ANALYZE done")
    if reindex:
        for name in search_indexes(conn):
            conn.execute(sql.SQL("REINDEX INDEX CONCURRENTLY {}").format(sql.Identifier(name)))
            report.reindexed.append(name)
            log(f"rebuilt {name}")
    report.seconds = time.perf_counter() - started
    return report
