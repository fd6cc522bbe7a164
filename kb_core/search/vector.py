"""Vector search: nearest chunks by cosine similarity, served by the model's HNSW index."""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg import sql

from kb_core.embeddings.base import Embedder
from kb_core.index.vector_index import model_predicate, vector_expression
from kb_core.models import SearchHit

_SPACE = re.compile(r"\s+")
_HEADING_MARK = re.compile(r"(?m)^#{1,6}\s+")


def make_snippet(text: str, limit: int) -> str:
    """The start of a chunk on one line (heading marks dropped), cut at a word boundary."""
    flat = _SPACE.sub(" ", _HEADING_MARK.sub("", text)).strip()
    if len(flat) <= limit:
        return flat
    cut = flat.rfind(" ", 0, limit)
    return flat[: cut if cut > limit // 2 else limit].rstrip() + "…"


def vector_search(
    conn: psycopg.Connection[Any],
    embedder: Embedder,
    query: str,
    *,
    k: int = 10,
    ef_search: int = 100,
    snippet_chars: int = 300,
) -> list[SearchHit]:
    """Top ``k`` live chunks for ``query``; score = cosine similarity in [-1, 1]."""
    if k <= 0:
        raise ValueError("k must be positive")
    query_vector = embedder.embed_query(query)
    distance = sql.SQL("{expr} <=> {param}::vector({dim})").format(
        expr=vector_expression(embedder.dimension),
        param=sql.Placeholder("q"),
        dim=sql.Literal(embedder.dimension),
    )
    statement = sql.SQL(
        """
        SELECT c.id, c.document_id, d.safe_title, c.text, c.heading_path, d.url, d.source,
               d.external_id, 1 - ({distance}) AS score
        FROM chunks c JOIN documents d ON d.id = c.document_id
        WHERE {model} AND d.deleted_at IS NULL
        ORDER BY {distance}
        LIMIT {limit}
        """
    ).format(distance=distance, model=model_predicate(embedder.model_id), limit=sql.Literal(k))
    with conn.transaction():
        # SET LOCAL keeps the setting from leaking to other users of a pooled connection.
        conn.execute(sql.SQL("SET LOCAL hnsw.ef_search = {}").format(sql.Literal(ef_search)))
        rows = conn.execute(statement, {"q": query_vector}).fetchall()
    return [
        SearchHit(
            document_id=doc_id,
            chunk_id=chunk_id,
            title=title,
            score=float(score),
            snippet=make_snippet(text, snippet_chars),
            heading_path=tuple(path or ()),
            url=url,
            source=source,
            external_id=external_id,
        )
        for chunk_id, doc_id, title, text, path, url, source, external_id, score in rows
    ]
