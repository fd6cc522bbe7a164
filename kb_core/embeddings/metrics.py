"""Prometheus counters of computed vectors and of unusable (zero / non-finite) ones.

The pipeline calls :func:`record_vectors` after each batch it embeds and skips the
invalid rows; a rising :func:`invalid_share` means the provider degrades (a broken model
server answering zeros, texts it cannot encode) and deserves an alert.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from prometheus_client import Counter

from kb_core.embeddings.base import Mask, invalid_rows

VECTORS = Counter(
    "kb_embedding_vectors",  # exposed as kb_embedding_vectors_total
    "Vectors computed by an embedding provider.",
    ["model"],
)
INVALID_VECTORS = Counter(
    "kb_embedding_invalid_vectors",  # exposed as kb_embedding_invalid_vectors_total
    "Vectors that came back zero or not finite and were not stored.",
    ["model"],
)


def record_vectors(model_id: str, total: int, invalid: int) -> None:
    """Count ``total`` computed vectors of a model, ``invalid`` of them unusable."""
    if total < 0 or invalid < 0 or invalid > total:
        raise ValueError(f"bad vector counts: total={total}, invalid={invalid}")
    VECTORS.labels(model=model_id).inc(total)
    INVALID_VECTORS.labels(model=model_id).inc(invalid)


def record_batch(model_id: str, vectors: npt.NDArray[np.floating]) -> Mask:
    """Count a batch of vectors and return its invalid-row mask (rows to skip)."""
    bad = invalid_rows(vectors)
    record_vectors(model_id, len(bad), int(bad.sum()))
    return bad


def _value(counter: Counter, model_id: str) -> float:
    for metric in counter.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total") and sample.labels.get("model") == model_id:
                return float(sample.value)
    return 0.0


def vector_counts(model_id: str) -> tuple[float, float]:
    """(vectors, invalid vectors) counted for a model in this process."""
    return _value(VECTORS, model_id), _value(INVALID_VECTORS, model_id)


def invalid_share(model_id: str) -> float:
    """Share of a model's vectors that were invalid (0.0 before any was counted)."""
    total, invalid = vector_counts(model_id)
    return invalid / total if total > 0 else 0.0
