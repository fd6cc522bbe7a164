"""Per-model HNSW indexes over the untyped ``chunks.embedding`` column.

pgvector indexes need a fixed dimension, so each embedding model gets a partial index on
``embedding::vector(dim)`` restricted to its own rows. Queries must use the very same
expression and predicate to be served by it: :func:`vector_expression` and
:func:`model_predicate` are the one place both sides take them from.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg import sql

# HNSW build parameters (pgvector defaults, measured adequate up to 100k chunks here).
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64


def index_name(model_id: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", model_id.lower()).strip("_")
    return f"chunks_embedding_hnsw_{slug}"[:63]


def vector_expression(dimension: int) -> sql.Composable:
    return sql.SQL("(c.embedding::vector({dim}))").format(dim=sql.Literal(dimension))


def model_predicate(model_id: str) -> sql.Composable:
    # A literal, not a parameter: the planner can only match a partial index predicate
    # against a constant.
    return sql.SQL("c.embedding_model = {model}").format(model=sql.Literal(model_id))


def ensure_vector_index(conn: psycopg.Connection[Any], model_id: str, dimension: int) -> bool:
    """Create the model's HNSW index when missing. Returns whether it was created."""
    name = index_name(model_id)
    exists = conn.execute("SELECT 1 FROM pg_class WHERE relname = %s", (name,)).fetchone()
    if exists:
        return False
    conn.execute(
        sql.SQL(
            "CREATE INDEX IF NOT EXISTS {name} ON chunks USING hnsw "
            "((embedding::vector({dim})) vector_cosine_ops) "
            "WITH (m = {m}, ef_construction = {efc}) WHERE embedding_model = {model}"
        ).format(
            name=sql.Identifier(name),
            dim=sql.Literal(dimension),
            m=sql.Literal(HNSW_M),
            efc=sql.Literal(HNSW_EF_CONSTRUCTION),
            model=sql.Literal(model_id),
        )
    )
    return True
