"""Draft quality in the evaluation: the lint, and the naive baseline measured alongside.

Per golden case and answer mode:

- ``lint_clean``: 1.0 when the draft passes :func:`kb_core.generation.lint.lint_draft`
  (its mean over a mode is the share of sendable drafts), ``lint_issues`` the codes of
  the problems found otherwise;
- ``baseline_chrf`` / ``baseline_similarity`` / ``baseline_lint_clean``: the same
  figures for what a naive extractive bot would send — the first sentences of the
  top-ranked document's resolution (:func:`kb_core.generation.draft.naive_draft`), on
  the same hits, so the two are compared on one retrieval.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from evals.retrieval import GoldenCase
from kb_core.generation.draft import naive_draft
from kb_core.generation.lint import lint_draft

if TYPE_CHECKING:
    from kb_core.embeddings import Embedder
    from kb_core.models import SearchHit

ANSWER_MODES = ("default", "opt_query", "rerank")
DRAFT_KEYS = (
    "lint_clean",
    "chrf",
    "similarity",
    "baseline_lint_clean",
    "baseline_chrf",
    "baseline_similarity",
)


def lint_metrics(draft: str) -> dict[str, Any]:
    issues = lint_draft(draft)
    return {"lint_clean": 0.0 if issues else 1.0, "lint_issues": sorted({i.code for i in issues})}


def baseline_metrics(
    case: GoldenCase, hits: Sequence[SearchHit], embedder: Embedder | None
) -> dict[str, Any]:
    """chrF, similarity and lint of the naive draft on the same hits."""
    from evals.answer_metrics import answer_metrics

    draft = naive_draft(hits)
    scores = answer_metrics(case, draft, [], [], embedder=embedder, llm=None)
    return {
        "baseline_chrf": scores.get("chrf"),
        "baseline_similarity": scores.get("similarity"),
        "baseline_lint_clean": 0.0 if lint_draft(draft) else 1.0,
    }
