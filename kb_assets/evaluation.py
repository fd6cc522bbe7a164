"""Glue between the evaluation harness (evals/) and the pipeline: settings, metadata."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import dagster as dg

from evals.harness import RETRIEVAL_KEYS, EvalRun, GateConfig
from evals.retrieval import GoldenCase
from kb_core.settings import PROJECT_ROOT, Settings, split_list


def golden_paths(settings: Settings) -> list[Path]:
    """The configured golden sets that exist (relative paths: from the repository)."""
    paths = []
    for raw in split_list(settings.eval_golden_paths):
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
            "faithfulness": settings.eval_min_faithfulness,
            "response_relevancy": settings.eval_min_answer_relevancy,
        }
        if (settings.llm_url or "").strip()
        else {}
    )
    return GateConfig(
        thresholds={"hit@5": settings.eval_min_hit5, "mrr@10": settings.eval_min_mrr10},
        tolerance=settings.eval_tolerance,
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


def eval_metadata(run: EvalRun, baseline: int | None, chart: bytes | None = None) -> dict[str, Any]:
    """Numbers Dagster charts over time, the gate, the worst cases as a table, and the
    history chart (PNG, inlined in Markdown)."""
    metadata: dict[str, Any] = {
        "evaluated": True,
        "candidate_version": run.version,
        "baseline_version": baseline,
        "passed": run.passed,
        "failures": dg.MetadataValue.json(run.gate["failures"]),
        "seconds": round(run.seconds, 1),
        "eval_run": run.id,
    }
    for mode, values in run.metrics.items():
        for key, value in values.items():
            if mode == "hybrid" or key in RETRIEVAL_KEYS:
                metadata[f"{mode} {key}"] = dg.MetadataValue.float(float(value))
    lines = ["| case | MRR@10 | hit@5 | top retrieved |", "| --- | --- | --- | --- |"]
    for row in run.worst:
        top = ", ".join(row["retrieved"][:3]) or "—"
        m = row["metrics"]
        lines.append(
            f"| {row['case_id']} | {m.get('mrr@10', 0):.3f} | {m.get('hit@5', 0):.0f} | {top} |"
        )
    metadata["worst_cases"] = dg.MetadataValue.md("\n".join(lines))
    if chart is not None:
        data = base64.b64encode(chart).decode("ascii")
        metadata["history_chart"] = dg.MetadataValue.md(
            f"![quality per evaluation](data:image/png;base64,{data})"
        )
    return metadata
