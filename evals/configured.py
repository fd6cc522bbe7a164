"""The evaluation as the settings configure it: golden sets, the gate, the answer scorer.

Shared by the pipeline's ``rag_eval`` asset and ``kb eval golden``; free of Dagster, so the
CLI evaluates without importing the code location.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evals.harness import GateConfig
from evals.retrieval import GoldenCase
from kb_core.settings import PROJECT_ROOT, Settings


def golden_paths(settings: Settings) -> list[Path]:
    """The configured golden sets that exist (relative paths: from the repository)."""
    paths = []
    for raw in settings.eval.golden_paths:
        path = Path(raw)
        path = path if path.is_absolute() else PROJECT_ROOT / path
        if path.is_file():
            paths.append(path)
    return paths


def gate_config(settings: Settings) -> GateConfig:
    # With an LLM the answers are judged too (RAGAS faithfulness and answer relevancy):
    # without one those metrics are not computed and cannot gate.
    answer_thresholds = (
        {
            "faithfulness": settings.eval.min_faithfulness,
            "response_relevancy": settings.eval.min_answer_relevancy,
        }
        if (settings.llm.url or "").strip()
        else {}
    )
    return GateConfig(
        thresholds={"hit@5": settings.eval.min_hit5, "mrr@10": settings.eval.min_mrr10},
        tolerance=settings.eval.tolerance,
        answer_thresholds=answer_thresholds,
    )


def answer_scorer(settings: Settings, embedder: Any) -> Any:
    """Answer the golden question the way the bot does, and score the answer."""
    from evals.answer_metrics import answer_metrics
    from evals.drafts import baseline_metrics, lint_metrics
    from kb_core.generation import GenerationOptions, categories_from_settings, generate
    from kb_core.generation.llm import ChatClient

    llm = ChatClient.from_settings(settings)
    categories = categories_from_settings(settings)
    options = GenerationOptions.from_settings(settings)

    def score(case: GoldenCase, hits: list[Any]) -> dict[str, Any]:
        generated = generate(case.question, hits, categories, llm, options=options)
        contexts = [source.text for source in generated.sources]
        ids = [f"{s.hit.source}:{s.hit.external_id}" for s in generated.sources]
        draft = generated.answer.draft_reply
        scores: dict[str, Any] = dict(
            answer_metrics(case, draft, contexts, ids, embedder=embedder, llm=llm)
        )
        scores.update(lint_metrics(draft))
        scores.update(baseline_metrics(case, hits, embedder))
        return scores

    return score
