"""Document-level retrieval metrics over a golden set.

Chunks are ranked by search; a document's rank is the rank of its best chunk. Golden
cases name relevant documents as ``source:external_id`` (``confluence:1001003``,
``pyrus:200014``).

Per case (:func:`case_metrics`, binary relevance, cut at k): ``hit@1``, ``hit@5``
(a relevant document in the first k), ``precision@5`` (relevant documents in the first 5,
divided by 5), ``recall@5`` and ``recall@10`` (share of the relevant documents found in
the first k), ``mrr@10`` and ``ndcg@10``. :func:`evaluate` gives their means;
:func:`evaluate_cases` keeps the per-case figures. The definitions are those of ranx
(``hit_rate@k``, ``precision@k``, ``recall@k``, ``mrr@k``, ``ndcg@k``):
:func:`evaluate_ranx` computes the means through ranx as a cross-check (ranx compiles
its metrics with numba: a few seconds per process, so it is imported only there).

A golden file is JSON Lines, one case a line::

    {"id": "gc-001", "question": "…", "relevant_doc_ids": ["confluence:1001002"],
     "reference_answer": "…", "tags": ["уведомления"], "origin": "curated"}

``origin`` says where a case comes from: ``curated`` (written by hand; the default),
``correction`` (an agent's correction of a bot answer, kept as a regression case) or
``synthetic`` (generated). :func:`load_golden_sets` merges several files (the sample set
and regression files); case ids must be unique across them.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kb_core.errors import KbError
from kb_core.settings import Settings

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
SAMPLE_GOLDEN = GOLDEN_DIR / "sample.jsonl"
REGRESSIONS_GOLDEN = GOLDEN_DIR / "regressions.jsonl"

ORIGINS = ("curated", "correction", "synthetic")
METRIC_KEYS = ("hit@1", "hit@5", "precision@5", "recall@5", "recall@10", "mrr@10", "ndcg@10")
# Our metric name → ranx's.
RANX_METRICS = {
    "hit@1": "hit_rate@1",
    "hit@5": "hit_rate@5",
    "precision@5": "precision@5",
    "recall@5": "recall@5",
    "recall@10": "recall@10",
    "mrr@10": "mrr@10",
    "ndcg@10": "ndcg@10",
}


class GoldenSetError(KbError, ValueError):
    """A golden file is malformed, or case ids collide (the message says where)."""


@dataclass(frozen=True)
class GoldenCase:
    id: str
    question: str
    relevant: frozenset[str]
    reference_answer: str
    tags: tuple[str, ...]
    origin: str  # curated / correction / synthetic in golden files ("external": SQuAD)


def _case(row: Any, where: str) -> GoldenCase:
    if not isinstance(row, dict):
        raise GoldenSetError(f"{where}: a case must be a JSON object")
    missing = [k for k in ("id", "question", "relevant_doc_ids") if k not in row]
    if missing:
        raise GoldenSetError(f"{where}: missing {', '.join(missing)}")
    if not isinstance(row["id"], str) or not row["id"].strip():
        raise GoldenSetError(f"{where}: 'id' must be a non-empty string")
    if not isinstance(row["question"], str) or not row["question"].strip():
        raise GoldenSetError(f"{where}: 'question' must be a non-empty string")
    relevant = row["relevant_doc_ids"]
    if not isinstance(relevant, list) or not all(isinstance(d, str) for d in relevant):
        raise GoldenSetError(f"{where}: 'relevant_doc_ids' must be a list of strings")
    tags = row.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise GoldenSetError(f"{where}: 'tags' must be a list of strings")
    origin = row.get("origin", "curated")
    if origin not in ORIGINS:
        raise GoldenSetError(f"{where}: origin {origin!r} is not one of {', '.join(ORIGINS)}")
    reference = row.get("reference_answer", "")
    if not isinstance(reference, str):
        raise GoldenSetError(f"{where}: 'reference_answer' must be a string")
    return GoldenCase(
        id=row["id"],
        question=row["question"],
        relevant=frozenset(relevant),
        reference_answer=reference,
        tags=tuple(tags),
        origin=origin,
    )


def load_golden(path: Path = SAMPLE_GOLDEN) -> list[GoldenCase]:
    """The cases of one golden file (GoldenSetError names the line of a bad case)."""
    path = Path(path)
    cases: list[GoldenCase] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise GoldenSetError(f"{where}: not valid JSON ({exc})") from None
        case = _case(row, where)
        if case.id in seen:
            raise GoldenSetError(
                f"{where}: duplicate case id {case.id!r} (first on line {seen[case.id]})"
            )
        seen[case.id] = number
        cases.append(case)
    return cases


def default_golden_paths() -> list[Path]:
    """The sample set, and the regression set when it exists."""
    return [p for p in (SAMPLE_GOLDEN, REGRESSIONS_GOLDEN) if p == SAMPLE_GOLDEN or p.is_file()]


def load_golden_sets(paths: Iterable[Path] | None = None) -> list[GoldenCase]:
    """The cases of several golden files, in order (default: :func:`default_golden_paths`).

    Case ids must be unique across the files: a GoldenSetError names both files otherwise.
    """
    cases: list[GoldenCase] = []
    where: dict[str, Path] = {}
    for path in default_golden_paths() if paths is None else [Path(p) for p in paths]:
        for case in load_golden(path):
            if case.id in where:
                raise GoldenSetError(
                    f"case id {case.id!r} is in both {where[case.id]} and {path}: "
                    "ids must be unique across golden files"
                )
            where[case.id] = path
            cases.append(case)
    return cases


def dedupe(doc_ids: Sequence[str]) -> list[str]:
    """Document ranking from a chunk ranking: first occurrence wins."""
    seen: dict[str, None] = {}
    for doc_id in doc_ids:
        seen.setdefault(doc_id, None)
    return list(seen)


def case_metrics(ranking: Sequence[str], relevant: frozenset[str]) -> dict[str, float]:
    """The metrics of one ranked list of (distinct) document ids against the relevant ones."""
    ranks = [i for i, doc in enumerate(ranking[:10], 1) if doc in relevant]
    first = ranks[0] if ranks else None
    dcg = sum(1 / math.log2(r + 1) for r in ranks)
    ideal = sum(1 / math.log2(r + 1) for r in range(1, min(len(relevant), 10) + 1))
    found5 = sum(1 for r in ranks if r <= 5)
    total = len(relevant)
    return {
        "hit@1": float(first == 1),
        "hit@5": float(first is not None and first <= 5),
        "precision@5": found5 / 5,
        "recall@5": found5 / total if total else 0.0,
        "recall@10": len(ranks) / total if total else 0.0,
        "mrr@10": 1 / first if first else 0.0,
        "ndcg@10": dcg / ideal if ideal else 0.0,
    }


def mean_case_metrics(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Means (rounded to 4 places) of per-case metric rows, over :data:`METRIC_KEYS`."""
    if not rows:
        return {k: 0.0 for k in METRIC_KEYS}
    return {k: round(sum(r[k] for r in rows) / len(rows), 4) for k in METRIC_KEYS}


def evaluate_cases(
    cases: Sequence[GoldenCase], search: Callable[[str], Sequence[str]]
) -> list[dict[str, Any]]:
    """One row per case: its id, origin, tags, document ranking (top 10) and metrics."""
    rows = []
    for case in cases:
        ranking = dedupe(search(case.question))
        rows.append(
            {
                "id": case.id,
                "origin": case.origin,
                "tags": list(case.tags),
                "ranking": ranking[:10],
                "metrics": case_metrics(ranking, case.relevant),
            }
        )
    return rows


def evaluate(cases: Sequence[GoldenCase], search: Callable[[str], Sequence[str]]) -> dict[str, Any]:
    """Mean metrics of ``search`` (question → ranked document ids) over ``cases``."""
    rows = [row["metrics"] for row in evaluate_cases(cases, search)]
    return {"queries": len(rows), **mean_case_metrics(rows)}


def evaluate_ranx(
    cases: Sequence[GoldenCase], rankings: Sequence[Sequence[str]]
) -> dict[str, float]:
    """The means of :data:`METRIC_KEYS` computed by ranx (``rankings[i]``: the ranked
    document ids of ``cases[i]``); a cross-check of :func:`case_metrics`.

    Cases without relevant documents cannot be expressed as ranx qrels and are left out
    (``queries`` says how many counted). Case ids must be unique.
    """
    if len(cases) != len(rankings):
        raise ValueError(f"{len(cases)} cases but {len(rankings)} rankings")
    ids = [case.id for case in cases]
    if len(set(ids)) != len(ids):
        raise ValueError("case ids must be unique")
    pairs = [(c, dedupe(r)) for c, r in zip(cases, rankings, strict=True) if c.relevant]
    if not pairs:
        return {"queries": 0.0, **{k: 0.0 for k in METRIC_KEYS}}

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's type-safety notes
        from ranx import Qrels, Run
        from ranx import evaluate as ranx_evaluate

        qrels = Qrels({case.id: {doc: 1 for doc in case.relevant} for case, _ in pairs})
        run = Run(
            {
                case.id: {doc: float(len(ranking) - i) for i, doc in enumerate(ranking)}
                for case, ranking in pairs
                if ranking
            }
        )
        scores = ranx_evaluate(qrels, run, list(RANX_METRICS.values()), make_comparable=True)
    return {
        "queries": float(len(pairs)),
        **{ours: round(float(scores[theirs]), 4) for ours, theirs in RANX_METRICS.items()},
    }


def evaluate_modes(
    conn: Any,
    embedder: Any,
    cases: Sequence[GoldenCase],
    *,
    settings: Settings,
    modes: Sequence[str] | None = None,
    k: int = 10,
    namespace: str = "kb",
    doc_key: Callable[[Any], str] = lambda hit: f"{hit.source}:{hit.external_id}",
) -> dict[str, Any]:
    """Document-level metrics of each search mode (as configured) on ``cases``.

    ``doc_key`` turns a hit into the id the cases name as relevant.
    """
    from kb_core.search import MODES, options_from_settings, search

    results: dict[str, Any] = {}
    for mode in modes or MODES:
        options = options_from_settings(settings, mode=mode, k=k, namespace=namespace)

        def ranked(question: str, options: Any = options) -> list[str]:
            return [doc_key(hit) for hit in search(conn, embedder, question, options)]

        results[mode] = evaluate(cases, ranked)
    return results
