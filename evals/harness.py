"""Evaluate an index version on the golden set, store the result, decide the gate.

Every mode is evaluated on the same version (retrieval metrics per case, with its
duration); hybrid, what the bot uses, also gets an answer generated the way the bot
does (LLM when configured, else extractive) and answer metrics. The run and its cases
go to ``eval_runs`` / ``eval_cases``, so trends survive and the gate can compare a
candidate with the active version's stored result. The gate passes when the hybrid
figures meet the thresholds AND none fell more than the tolerance below the active
version's AND every approved correction (a regression case, see evals.regressions) still
finds its entry among the first five sources. With an LLM, the answer metrics
(faithfulness, answer relevancy) are gated the same way (``GateConfig.answer_thresholds``).

Answer modes (``default``, ``opt_query``, ``rerank``: docs/answers.md) may be evaluated
besides the retrieval modes; they search in hybrid mode, with the LLM's query or a
reranked order, and get answer metrics, the draft lint and the naive baseline.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

from evals.regressions import REGRESSION_ORIGIN, correction_cases, merged, regression_failures
from evals.retrieval import GoldenCase, case_metrics, dedupe, load_golden_sets

GATED_METRICS = ("hit@5", "mrr@10")
RETRIEVAL_KEYS = ("hit@1", "hit@5", "precision@5", "recall@5", "mrr@10", "ndcg@10")


# The answer-side modes of the seed: the bot's answer (default), with the LLM's search
# query (opt_query), with the top hits reranked (rerank). Each searches in hybrid mode.
ANSWER_MODES = ("default", "opt_query", "rerank")
RETRIEVAL_MODES = ("hybrid", "vector", "lexical")


@dataclass(frozen=True)
class GateConfig:
    thresholds: dict[str, float] = field(default_factory=lambda: {"hit@5": 0.8, "mrr@10": 0.6})
    tolerance: float = 0.02  # largest allowed drop against the active version
    # issue 23: answer metrics (RAGAS faithfulness, answer relevancy) when an LLM judges
    # them; empty: not gated. Same tolerance against the active version as retrieval.
    answer_thresholds: dict[str, float] = field(default_factory=dict)


@dataclass
class EvalRun:
    id: int
    version: int
    metrics: dict[str, dict[str, float]]
    gate: dict[str, Any]
    passed: bool
    seconds: float
    worst: list[dict[str, Any]]


def golden_name(paths: Sequence[Path], cases: Sequence[GoldenCase]) -> str:
    digest = hashlib.sha256(
        json.dumps(sorted(c.id for c in cases), ensure_ascii=False).encode()
    ).hexdigest()[:12]
    return f"{'+'.join(p.name for p in paths)}#{digest}"


def _means(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    keys = {k for row in rows for k, v in row.items() if isinstance(v, int | float)}
    out = {}
    for key in sorted(keys):
        values = [float(r[key]) for r in rows if isinstance(r.get(key), int | float)]
        if values:
            out[key] = round(sum(values) / len(values), 4)
    return out


def evaluate_version(
    conn: Any,
    version: int,
    cases: Sequence[GoldenCase],
    *,
    search: Callable[[str, str, int], list[Any]],
    answer: Callable[[GoldenCase, list[Any]], dict[str, Any]] | None = None,
    modes: Sequence[str] = ("hybrid", "vector", "lexical"),
    doc_key: Callable[[Any], str] = lambda hit: f"{hit.source}:{hit.external_id}",
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> tuple[dict[str, dict[str, float]], list[dict[str, Any]], float]:
    """Metrics per mode, and the per-case rows. ``search(question, mode, version)`` gives
    hits; ``answer(case, hits)`` (hybrid only) gives answer metrics."""
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    total = len(cases) * len(modes)
    done = 0
    for mode in modes:
        for case in cases:
            t0 = time.perf_counter()
            hits = search(case.question, mode, version)
            ranking = dedupe([doc_key(h) for h in hits])
            metrics: dict[str, Any] = dict(case_metrics(ranking, case.relevant))
            if (mode == "hybrid" or mode in ANSWER_MODES) and answer is not None:
                metrics.update(answer(case, hits))
            rows.append(
                {
                    "case_id": case.id,
                    "mode": mode,
                    "metrics": metrics,
                    "retrieved": ranking[:10],
                    "duration_s": round(time.perf_counter() - t0, 4),
                }
            )
            done += 1
            progress(done, total)
    means = {
        mode: {
            "queries": float(len(cases)),
            **_means([r["metrics"] for r in rows if r["mode"] == mode]),
            "duration_s": round(
                sum(r["duration_s"] for r in rows if r["mode"] == mode) / max(len(cases), 1), 4
            ),
        }
        for mode in modes
    }
    return means, rows, time.perf_counter() - started


def decide_gate(
    metrics: dict[str, dict[str, float]],
    baseline: dict[str, dict[str, float]] | None,
    config: GateConfig,
) -> dict[str, Any]:
    """Thresholds on hybrid, and no regression beyond the tolerance against the baseline."""
    hybrid = metrics.get("hybrid", {})
    failures: list[str] = []
    if not hybrid.get("queries"):
        return {
            "thresholds": config.thresholds,
            "tolerance": config.tolerance,
            "baseline": None,
            "failures": failures,
            "note": "no applicable golden cases",
        }
    for key, minimum in {**config.thresholds, **config.answer_thresholds}.items():
        value = hybrid.get(key)
        if value is None or value < minimum:
            failures.append(f"{key} {value} below the threshold {minimum}")
    if baseline:
        for key in (*GATED_METRICS, *config.answer_thresholds):
            before, now = baseline.get("hybrid", {}).get(key), hybrid.get(key)
            if before is not None and now is not None and now < before - config.tolerance:
                failures.append(f"{key} fell from {before} to {now} (tolerance {config.tolerance})")
    return {
        "thresholds": {**config.thresholds, **config.answer_thresholds},
        "tolerance": config.tolerance,
        "baseline": baseline.get("hybrid") if baseline else None,
        "failures": failures,
    }


def store_run(
    conn: Any,
    version: int,
    namespace: str,
    golden: str,
    metrics: dict[str, dict[str, float]],
    rows: Sequence[dict[str, Any]],
    gate: dict[str, Any],
    seconds: float,
) -> int:
    with conn.transaction():
        run_id = conn.execute(
            """
            INSERT INTO eval_runs (index_version, namespace, golden_set, seconds, metrics, gate,
                                   passed)
            VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id
            """,
            (
                version,
                namespace,
                golden,
                seconds,
                json.dumps(metrics),
                json.dumps(gate, ensure_ascii=False),
                not gate["failures"],
            ),
        ).fetchone()[0]
        with conn.cursor() as cur:
            cur.executemany(
                """
                INSERT INTO eval_cases (run_id, case_id, mode, metrics, retrieved, duration_s)
                VALUES (%s, %s, %s, %s, %s, %s)
                """,
                [
                    (
                        run_id,
                        r["case_id"],
                        r["mode"],
                        json.dumps(r["metrics"]),
                        json.dumps(r["retrieved"], ensure_ascii=False),
                        r["duration_s"],
                    )
                    for r in rows
                ],
            )
    return int(run_id)


def document_keys(conn: Any, versions: Sequence[int]) -> set[str]:
    """``source:external_id`` of every document with chunks in any of ``versions``."""
    from psycopg import sql

    from kb_core.index.versions import visible

    keys: set[str] = set()
    for version in versions:
        rows = conn.execute(
            sql.SQL(
                "SELECT DISTINCT d.source || ':' || d.external_id FROM chunks c "
                "JOIN documents d ON d.id = c.document_id WHERE {visible} AND c.namespace = "
                "(SELECT namespace FROM index_versions WHERE id = {version})"
            ).format(visible=visible("c", version), version=sql.Literal(version))
        ).fetchall()
        keys.update(str(r[0]) for r in rows)
    return keys


def latest_metrics(conn: Any, version: int, golden: str) -> dict[str, dict[str, float]] | None:
    row = conn.execute(
        """
        SELECT metrics FROM eval_runs WHERE index_version = %s AND golden_set = %s
        ORDER BY id DESC LIMIT 1
        """,
        (version, golden),
    ).fetchone()
    return dict(row[0]) if row else None


def worst_cases(rows: Sequence[dict[str, Any]], n: int = 10) -> list[dict[str, Any]]:
    """Hybrid cases with the lowest MRR@10 (ties: slowest first)."""
    hybrid = [r for r in rows if r["mode"] == "hybrid"]
    hybrid.sort(key=lambda r: (r["metrics"].get("mrr@10", 0.0), -r["duration_s"]))
    return hybrid[:n]


def scoped_keys(conn: Any, scope: Any) -> set[str]:
    """``source:external_id`` of the live documents a search scope admits."""
    from psycopg import sql

    from kb_core.search.scope import scope_clause

    query = sql.SQL(
        "SELECT d.source || ':' || d.external_id FROM documents d "
        "WHERE d.deleted_at IS NULL AND {clause}"
    ).format(clause=scope_clause(scope))
    return {str(row[0]) for row in conn.execute(query)}


def run_eval(
    conn: Any,
    embedder: Any,
    settings: Any,
    *,
    version: int,
    baseline_version: int | None,
    golden_paths: Sequence[Path],
    answer: Callable[[GoldenCase, list[Any]], dict[str, Any]] | None = None,
    config: GateConfig | None = None,
    progress: Callable[[int, int], None] = lambda done, total: None,
    answer_modes: Sequence[str] = (),
    scope: Any = None,
) -> EvalRun:
    """Evaluate ``version``, compare with ``baseline_version`` (evaluated now if it has
    no stored run on this golden set), store and return the run. ``answer_modes`` (of
    :data:`ANSWER_MODES`) are evaluated besides the retrieval modes.

    ``scope`` (a :class:`kb_core.search.SearchScope`) evaluates search restricted to a
    part of the knowledge base, as a scoped bot or console would search it."""
    from kb_core.generation.llm import ChatClient
    from kb_core.generation.rerank import AnswerSteps
    from kb_core.search import options_from_settings
    from kb_core.search import search as search_kb
    from kb_core.search.hybrid import Mode

    config = config or GateConfig()
    # Approved corrections are regression cases from the moment they are indexed.
    all_cases = merged(load_golden_sets(golden_paths), correction_cases(conn))
    golden = golden_name(golden_paths, all_cases)
    # A case counts when its documents are in the candidate or the active version: a
    # golden set written for another knowledge base measures nothing here, while a
    # candidate that lost documents the active version has is measured (and fails).
    present = document_keys(conn, [v for v in (version, baseline_version) if v is not None])
    if scope is not None and not scope.empty:
        present &= scoped_keys(conn, scope)  # a case outside the scope measures nothing
    cases = [c for c in all_cases if c.relevant & present]
    base_options = options_from_settings(settings, k=10, scope=scope)

    unknown = [m for m in answer_modes if m not in ANSWER_MODES]
    if unknown:
        raise ValueError(f"unknown answer modes {unknown}; known: {', '.join(ANSWER_MODES)}")
    llm = ChatClient.from_settings(settings) if answer_modes else None
    steps = AnswerSteps.from_settings(settings)
    mode_steps = {
        "default": replace(steps, opt_query=False, llm_rerank=False, reranker=None),
        "opt_query": replace(steps, opt_query=True, llm_rerank=False, reranker=None),
        "rerank": replace(steps, opt_query=False, llm_rerank=steps.reranker is None),
    }
    notes = []
    if llm is None and "opt_query" in answer_modes:
        notes.append("no LLM (KB_LLM_URL): opt_query searches with the question as written")
    if llm is None and steps.reranker is None and "rerank" in answer_modes:
        notes.append("no LLM and no KB_RERANKER_URL: rerank keeps the search order")

    def search(question: str, mode: str, v: int) -> list[Any]:
        if mode in mode_steps:
            chosen = mode_steps[mode]
            options = replace(base_options, mode="hybrid", version=v)
            hits = search_kb(conn, embedder, chosen.query(llm, question), options)
            return chosen.rerank(llm, question, hits)
        # Retrieval modes only here (answer modes are in mode_steps above).
        return search_kb(
            conn, embedder, question, replace(base_options, mode=cast(Mode, mode), version=v)
        )

    metrics, rows, seconds = evaluate_version(
        conn,
        version,
        cases,
        search=search,
        answer=answer,
        progress=progress,
        modes=(*RETRIEVAL_MODES, *answer_modes),
    )
    baseline = None
    if baseline_version is not None:
        baseline = latest_metrics(conn, baseline_version, golden)
        if baseline is None:
            baseline, base_rows, base_seconds = evaluate_version(
                conn, baseline_version, cases, search=search, modes=("hybrid",)
            )
            store_run(
                conn,
                baseline_version,
                "kb",
                golden,
                baseline,
                base_rows,
                decide_gate(baseline, None, config),
                base_seconds,
            )
    gate = decide_gate(metrics, baseline, config)
    gate["failures"] += regression_failures(rows, cases)
    gate["cases"] = len(cases)
    gate["regression_cases"] = sum(1 for c in cases if c.origin == REGRESSION_ORIGIN)
    gate["cases_not_applicable"] = len(all_cases) - len(cases)
    if notes:
        gate["notes"] = notes
    run_id = store_run(conn, version, "kb", golden, metrics, rows, gate, seconds)
    return EvalRun(run_id, version, metrics, gate, not gate["failures"], seconds, worst_cases(rows))
