"""The interface every embedding provider implements.

Documents and queries are separate calls because some models (e5, BGE) embed them with
different prefixes. Vectors are float32 and L2-normalised, so cosine = dot product.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]


class EmbeddingError(RuntimeError):
    """A provider failed or returned unusable vectors."""


@runtime_checkable
class Embedder(Protocol):
    @property
    def model_id(self) -> str:
        """Stable identifier stored with every vector (a change means re-embedding)."""

    @property
    def dimension(self) -> int: ...

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        """One row per text, shape (len(texts), dimension)."""

    def embed_query(self, text: str) -> Vectors:
        """A single vector, shape (dimension,)."""


def normalize_rows(vectors: npt.NDArray[np.floating]) -> Vectors:
    """Float32 rows scaled to unit length; a zero or non-finite row is an error."""
    matrix = np.asarray(vectors, dtype=np.float32)
    if matrix.ndim != 2:
        raise EmbeddingError(f"expected a 2-D array of vectors, got shape {matrix.shape}")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    bad = ~np.isfinite(norms[:, 0]) | (norms[:, 0] == 0)
    if bad.any():
        raise EmbeddingError(f"{int(bad.sum())} of {len(matrix)} vectors are zero or not finite")
    normalized: Vectors = (matrix / norms).astype(np.float32)
    return normalized
