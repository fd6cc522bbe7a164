"""The ``knowledge_base`` group's gate: the candidate index version evaluated on the
golden sets, the blocking check on the verdict, and the promotion it guards.

The evaluation itself is framework-free (evals.harness, evals.configured, evals.gate);
this module adds what Dagster shows: metadata charted per materialisation.
"""

import base64
from datetime import timedelta
from typing import Any

import dagster as dg

from evals.configured import answer_scorer, gate_config, golden_paths
from evals.gate import latest_verdict
from evals.harness import RETRIEVAL_KEYS, EvalRun, run_eval
from evals.report import history, history_chart
from kb_assets.automation import CHECK_WITH_ASSET, DOWNSTREAM
from kb_assets.common import ProgressLog
from kb_assets.index import chunk_embeddings
from kb_assets.resources import DatabaseResource, EmbedderResource, NotificationsResource
from kb_core.index.versions import (
    NoActiveVersion,
    PromotionRefused,
    active_version,
    candidate_version,
    promote,
)
from kb_core.notify import promotion_blocked_text, title

__all__ = [
    "answer_scorer",
    "candidate_passes_eval",
    "eval_metadata",
    "gate_config",
    "golden_paths",
    "promoted_index",
    "rag_eval",
]


@dg.asset(
    group_name="knowledge_base",
    deps=[chunk_embeddings],
    description="The candidate index version evaluated on the golden sets (retrieval per "
    "mode, answers in hybrid), compared with the active version; stored per version.",
    kinds={"postgres"},
    automation_condition=DOWNSTREAM,
)
def rag_eval(
    context: dg.AssetExecutionContext, database: DatabaseResource, embedder: EmbedderResource
) -> dg.MaterializeResult:
    settings = database.settings
    with database.connection() as conn:
        candidate = candidate_version(conn)
        if candidate is None:
            context.log.info("no candidate version: nothing to evaluate")
            return dg.MaterializeResult(metadata={"evaluated": False})
        try:
            baseline: int | None = active_version(conn).id
        except NoActiveVersion:
            baseline = None
        run = run_eval(
            conn,
            embedder.get(),
            settings,
            version=candidate.id,
            baseline_version=baseline,
            golden_paths=golden_paths(settings),
            answer=answer_scorer(settings, embedder.get()),
            config=gate_config(settings),
            progress=ProgressLog(context, "evaluated questions"),
        )
        chart = history_chart(history(conn))
    for failure in run.gate["failures"]:
        context.log.error(f"candidate {candidate.id}: {failure}")
    return dg.MaterializeResult(metadata=eval_metadata(run, baseline, chart))


@dg.asset_check(
    asset=rag_eval,
    blocking=True,
    automation_condition=CHECK_WITH_ASSET,
    description="The candidate meets the quality thresholds and does not regress against "
    "the active version; otherwise the run stops before promotion.",
)
def candidate_passes_eval(
    context: dg.AssetCheckExecutionContext,
    database: DatabaseResource,
    notifications: NotificationsResource,
) -> dg.AssetCheckResult:
    settings = database.settings
    with database.connection() as conn:
        candidate = candidate_version(conn)
        if candidate is None:
            return dg.AssetCheckResult(passed=True, metadata={"candidate": "none"})
        verdict = latest_verdict(conn, candidate.id)
    if verdict is None:
        return dg.AssetCheckResult(
            passed=not settings.eval.gate, metadata={"candidate": candidate.id, "run": "none"}
        )
    if not verdict.passed and settings.eval.gate:
        notifications.send(
            "promotion_blocked",
            title("promotion_blocked"),
            promotion_blocked_text(candidate.id, verdict.failures),
        )
    return dg.AssetCheckResult(
        passed=verdict.passed or not settings.eval.gate,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={
            "candidate": candidate.id,
            "eval_run": verdict.run_id,
            "failures": dg.MetadataValue.json(verdict.failures),
            "gate_enforced": settings.eval.gate,
        },
    )


@dg.asset(
    group_name="knowledge_base",
    deps=[chunk_embeddings, rag_eval],
    description="The index version the bot reads: the candidate, promoted atomically once "
    "its gates pass (evaluation, every chunk embedded and re-scanned for personal data).",
    kinds={"postgres"},
    automation_condition=DOWNSTREAM,
    freshness_policy=dg.FreshnessPolicy.time_window(
        fail_window=timedelta(hours=26), warn_window=timedelta(hours=24)
    ),
)
def promoted_index(
    context: dg.AssetExecutionContext,
    database: DatabaseResource,
    notifications: NotificationsResource,
) -> dg.MaterializeResult:
    with database.connection() as conn:
        try:
            result = promote(conn)
        except PromotionRefused as refused:
            context.log.error(str(refused))
            notifications.send(
                "promotion_blocked",
                title("promotion_blocked"),
                promotion_blocked_text(
                    refused.version_id, [f"{k}: {v}" for k, v in refused.failed.items()]
                ),
            )
            raise dg.Failure(
                description=str(refused),
                metadata={"candidate_version": refused.version_id, **refused.failed},
            ) from refused
        active = active_version(conn)
    if result is None:
        context.log.info(f"nothing changed: version {active.id} stays active")
    return dg.MaterializeResult(
        metadata={
            "active_version": active.id,
            "promoted": result is not None,
            "previous_version": result.previous if result else None,
            "chunks": active.chunks or 0,
            "documents": active.documents or 0,
            "embedding_model": active.embedding_model or "",
            "dimension": active.dimension or 0,
        }
    )


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
