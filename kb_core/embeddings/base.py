"""The interface every embedding provider implements.

Documents and queries are separate calls because some models (e5, BGE) embed them with
different prefixes. Vectors are float32 and L2-normalised, so cosine = dot product.

A provider does not fail a whole batch because of one unusable vector: a row that came
back zero or not finite is returned as an all-zero row, which :func:`invalid_rows`
flags. Callers skip those rows (and count them, see :mod:`kb_core.embeddings.metrics`)
instead of storing them. A single query has no other rows to save, so ``embed_query``
raises :class:`EmbeddingError` when its vector is unusable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from kb_core.errors import KbError

Vectors = npt.NDArray[np.float32]
Mask = npt.NDArray[np.bool_]


class EmbeddingError(KbError, RuntimeError):
    """A provider failed or returned unusable vectors."""


@runtime_checkable
class Embedder(Protocol):
    @property
    def model_id(self) -> str:
        """Stable identifier stored with every vector (a change means re-embedding)."""

    @property
    def dimension(self) -> int: ...

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        """One row per text, shape (len(texts), dimension); unusable rows are all zero."""

    def embed_query(self, text: str) -> Vectors:
        """A single unit vector, shape (dimension,); EmbeddingError when unusable."""


def invalid_rows(vectors: npt.NDArray[np.floating]) -> Mask:
    """True for each row that is zero or not finite (no direction to compare)."""
    matrix = np.asarray(vectors, dtype=np.float64)
    if matrix.ndim == 1:
        matrix = matrix[np.newaxis, :]
    if matrix.ndim != 2:
        raise EmbeddingError(f"expected a 2-D array of vectors, got shape {matrix.shape}")
    finite = np.isfinite(matrix).all(axis=1)
    norms = np.linalg.norm(np.where(np.isfinite(matrix), matrix, 0.0), axis=1)
    bad: Mask = ~finite | ~(norms > 0) | ~np.isfinite(norms)
    return bad


def normalize_rows(vectors: npt.NDArray[np.floating]) -> Vectors:
    """Float32 rows scaled to unit length; zero or non-finite rows become all-zero rows."""
    matrix = np.asarray(vectors, dtype=np.float64)
    if matrix.ndim != 2:
        raise EmbeddingError(f"expected a 2-D array of vectors, got shape {matrix.shape}")
    bad = invalid_rows(matrix)
    safe = np.where(bad[:, np.newaxis], 0.0, matrix)
    norms = np.linalg.norm(safe, axis=1, keepdims=True)
    norms[bad] = 1.0
    normalized: Vectors = (safe / norms).astype(np.float32)
    return normalized


def single_query_vector(model_id: str, rows: Vectors) -> Vectors:
    """The one row of a query embedding, or EmbeddingError if it is unusable."""
    if rows.shape[0] != 1 or bool(invalid_rows(rows)[0]):
        raise EmbeddingError(f"{model_id}: the query embedding is zero or not finite")
    vector: Vectors = rows[0]
    return vector
