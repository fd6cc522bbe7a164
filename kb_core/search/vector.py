"""Vector candidates: nearest chunks by cosine similarity, served by the model's HNSW index."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg import sql

from kb_core.index.vector_index import model_predicate, vector_expression
from kb_core.index.versions import VersionInfo, visible
from kb_core.search.access import readable
from kb_core.search.candidates import Candidate


def vector_candidates(
    conn: psycopg.Connection[Any],
    query_vector: npt.NDArray[np.float32],
    *,
    model_id: str,
    dimension: int,
    k: int,
    version: VersionInfo,
    ef_search: int = 100,
    reader_groups: Collection[str] | None = None,
) -> list[Candidate]:
    """Chunks of ``version`` by cosine similarity, best first.

    Rows of other versions and namespaces are filtered after the index scan; iterative
    scans keep reading the index until enough rows pass.
    """
    distance = sql.SQL("{expr} <=> {param}::vector({dim})").format(
        expr=vector_expression(dimension),
        param=sql.Placeholder("q"),
        dim=sql.Literal(dimension),
    )
    statement = sql.SQL(
        """
        SELECT c.id, c.document_id, 1 - ({distance}) AS score
        FROM chunks c
        WHERE {model} AND c.namespace = {namespace} AND {visible}
          AND {readable}
        ORDER BY {distance}
        LIMIT {limit}
        """
    ).format(
        distance=distance,
        model=model_predicate(model_id),
        namespace=sql.Literal(version.namespace),
        visible=visible("c", version.id),
        readable=readable(sql.SQL("c.document_id"), reader_groups),
        limit=sql.Literal(k),
    )
    with conn.transaction():
        _set_scan_options(conn, ef_search)
        rows = conn.execute(statement, {"q": query_vector}).fetchall()
    return [Candidate(int(chunk), int(doc), float(score)) for chunk, doc, score in rows]


# Whether a database's pgvector has iterative index scans (0.8+), learnt on its first
# search: later searches then set both options in one statement instead of probing with
# a savepoint each time (four round trips saved on every query).
_ITERATIVE_SCANS: dict[tuple[str, int, str], bool] = {}


def _set_scan_options(conn: psycopg.Connection[Any], ef_search: int) -> None:
    """HNSW options for the current transaction only (``is_local``), so they never leak to
    other users of a pooled connection."""
    key = (conn.info.host, conn.info.port, conn.info.dbname)
    supported = _ITERATIVE_SCANS.get(key)
    if supported:
        conn.execute(
            "SELECT set_config('hnsw.ef_search', %s, true), "
            "set_config('hnsw.iterative_scan', 'relaxed_order', true)",
            (str(ef_search),),
        )
        return
    conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(ef_search),))
    if supported is None:
        # pgvector < 0.8 has no iterative scans: the savepoint lets the query run without.
        try:
            with conn.transaction():
                conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
            _ITERATIVE_SCANS[key] = True
        except psycopg.errors.UndefinedObject:
            _ITERATIVE_SCANS[key] = False
