"""Builds embedders once per process: one tuned for pipeline batches, one for queries."""

from __future__ import annotations

from functools import lru_cache

from kb_core.embeddings.base import Embedder
from kb_core.embeddings.usem3 import UsemEmbedder
from kb_core.settings import Settings


@lru_cache(maxsize=4)
def make_embedder(name: str = "usem3", threads: int = 1, batch_size: int = 64) -> Embedder:
    if name == "usem3":
        return UsemEmbedder(threads=threads, batch_size=batch_size)
    raise ValueError(f"unknown embedder {name!r}")


def pipeline_embedder(settings: Settings) -> Embedder:
    """For batches of chunks: more BLAS threads pay off on large matrices."""
    return make_embedder(settings.embedder, settings.embed_threads, settings.embed_batch_size)


def query_embedder(settings: Settings) -> Embedder:
    """For one query at a time: a single BLAS thread avoids 100-200 ms scheduling stalls."""
    return make_embedder(settings.embedder, settings.query_embed_threads, 1)
