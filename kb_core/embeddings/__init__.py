"""Embedding providers behind one interface."""

from kb_core.embeddings.base import Embedder, EmbeddingError, invalid_rows, normalize_rows
from kb_core.embeddings.factory import (
    HttpConfig,
    make_embedder,
    openai_embedder,
    pipeline_embedder,
    query_embedder,
)

__all__ = [
    "Embedder",
    "EmbeddingError",
    "HttpConfig",
    "invalid_rows",
    "make_embedder",
    "normalize_rows",
    "openai_embedder",
    "pipeline_embedder",
    "query_embedder",
]
