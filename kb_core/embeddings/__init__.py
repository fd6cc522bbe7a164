"""Embedding providers behind one interface."""

from kb_core.embeddings.base import Embedder, EmbeddingError
from kb_core.embeddings.factory import make_embedder, pipeline_embedder, query_embedder

__all__ = ["Embedder", "EmbeddingError", "make_embedder", "pipeline_embedder", "query_embedder"]
