"""Fusion of the vector and lexical halves: one score per document (or chunk).

Weighted fusion min-max normalises each half and mixes them (α·vector + β·lexical, the
lexical weight raised for short queries, whose few words carry exact terms: error codes,
product names); reciprocal rank fusion adds 1/(k + rank) per half and ignores the
scores' scales altogether. A key missing from one half scores 0 there.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from kb_core.search.candidates import Candidate

_WORDS = re.compile(r"\w+")


class FusionOptions(Protocol):
    """What fusion reads of the search options (``SearchOptions`` has it all)."""

    @property
    def fusion(self) -> str: ...
    @property
    def alpha(self) -> float: ...
    @property
    def short_query_words(self) -> int: ...
    @property
    def short_query_lexical_weight(self) -> float: ...
    @property
    def rrf_k(self) -> int: ...


def _min_max(scores: dict[int, float]) -> dict[int, float]:
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    if high - low < 1e-12:
        return dict.fromkeys(scores, 1.0)
    return {key: (value - low) / (high - low) for key, value in scores.items()}


def best_per_document(candidates: Sequence[Candidate]) -> dict[int, Candidate]:
    """Each document's best chunk (candidates come best first)."""
    best: dict[int, Candidate] = {}
    for candidate in candidates:
        best.setdefault(candidate.document_id, candidate)
    return best


def fuse(
    vector: dict[int, float], lexical: dict[int, float], query: str, options: FusionOptions
) -> dict[int, float]:
    """Fused score per key (document id or chunk id), higher is better."""
    if options.fusion == "rrf":
        fused: dict[int, float] = {}
        for scores in (vector, lexical):
            ranking = sorted(scores, key=lambda key: -scores[key])
            for rank, key in enumerate(ranking, 1):
                fused[key] = fused.get(key, 0.0) + 1.0 / (options.rrf_k + rank)
        return fused
    words = len(_WORDS.findall(query))
    beta = (
        options.short_query_lexical_weight
        if words <= options.short_query_words
        else 1.0 - options.alpha
    )
    v, lx = _min_max(vector), _min_max(lexical)
    return {
        key: (1 - beta) * v.get(key, 0.0) + beta * lx.get(key, 0.0) for key in v.keys() | lx.keys()
    }
