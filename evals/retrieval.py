"""Document-level retrieval metrics over a golden set (hit@k, MRR@10, nDCG@10).

Chunks are ranked by search; a document's rank is the rank of its best chunk. Golden
cases name relevant documents as ``source:external_id`` (``confluence:1001003``,
``pyrus:200014``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"


@dataclass(frozen=True)
class GoldenCase:
    id: str
    question: str
    relevant: frozenset[str]
    reference_answer: str
    tags: tuple[str, ...]
    origin: str


def load_golden(path: Path = GOLDEN_DIR / "sample.jsonl") -> list[GoldenCase]:
    cases = []
    for line in path.read_text("utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            cases.append(
                GoldenCase(
                    id=row["id"],
                    question=row["question"],
                    relevant=frozenset(row["relevant_doc_ids"]),
                    reference_answer=row["reference_answer"],
                    tags=tuple(row.get("tags", [])),
                    origin=row.get("origin", "curated"),
                )
            )
    return cases


def dedupe(doc_ids: Sequence[str]) -> list[str]:
    """Document ranking from a chunk ranking: first occurrence wins."""
    seen: dict[str, None] = {}
    for doc_id in doc_ids:
        seen.setdefault(doc_id, None)
    return list(seen)


def case_metrics(ranking: Sequence[str], relevant: frozenset[str]) -> dict[str, float]:
    ranks = [i for i, doc in enumerate(ranking[:10], 1) if doc in relevant]
    first = ranks[0] if ranks else None
    dcg = sum(1 / math.log2(r + 1) for r in ranks)
    ideal = sum(1 / math.log2(r + 1) for r in range(1, min(len(relevant), 10) + 1))
    return {
        "hit@1": float(first == 1),
        "hit@5": float(first is not None and first <= 5),
        "mrr@10": 1 / first if first else 0.0,
        "ndcg@10": dcg / ideal if ideal else 0.0,
    }


def evaluate(cases: Sequence[GoldenCase], search: Callable[[str], Sequence[str]]) -> dict[str, Any]:
    """Mean metrics of ``search`` (question → ranked document ids) over ``cases``."""
    rows = [case_metrics(dedupe(search(case.question)), case.relevant) for case in cases]
    keys = ("hit@1", "hit@5", "mrr@10", "ndcg@10")
    return {
        "queries": len(rows),
        **{k: round(sum(r[k] for r in rows) / len(rows), 4) for k in keys},
    }


def evaluate_modes(
    conn: Any,
    embedder: Any,
    cases: Sequence[GoldenCase],
    *,
    modes: Sequence[str] | None = None,
    k: int = 10,
    namespace: str = "kb",
    doc_key: Callable[[Any], str] = lambda hit: f"{hit.source}:{hit.external_id}",
) -> dict[str, Any]:
    """Document-level metrics of each search mode (as configured) on ``cases``.

    ``doc_key`` turns a hit into the id the cases name as relevant.
    """
    from kb_core.search import MODES, options_from_settings, search
    from kb_core.settings import get_settings

    results: dict[str, Any] = {}
    for mode in modes or MODES:
        options = options_from_settings(get_settings(), mode=mode, k=k, namespace=namespace)

        def ranked(question: str, options: Any = options) -> list[str]:
            return [doc_key(hit) for hit in search(conn, embedder, question, options)]

        results[mode] = evaluate(cases, ranked)
    return results
