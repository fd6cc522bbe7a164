"""The per-case table of a stored evaluation run, in the production RAG seed's columns:
``test_id, mode, distance, similarity, duration_s, precision@5`` and pass/fail.

``distance`` is the seed's: 1 − cosine similarity of the draft's and the reference
answer's embeddings (retrieval-only modes have no draft: no distance, no similarity). A
row passes when its precision@5 reaches the minimum and, when it has a draft, its
distance stays within the maximum (``KB_EVAL_CASE_MIN_PRECISION5``,
``KB_EVAL_CASE_MAX_DISTANCE``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CaseThresholds:
    max_distance: float = 0.5
    min_precision5: float = 0.2


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def case_row(
    case_id: str, mode: str, metrics: dict[str, Any], duration_s: float, t: CaseThresholds
) -> dict[str, Any]:
    similarity = _number(metrics.get("similarity"))
    distance = None if similarity is None else round(1.0 - similarity, 4)
    precision = _number(metrics.get("precision@5"))
    passed = precision is not None and precision >= t.min_precision5
    if distance is not None:
        passed = passed and distance <= t.max_distance
    return {
        "test_id": case_id,
        "mode": mode,
        "distance": distance,
        "similarity": None if similarity is None else round(similarity, 4),
        "duration_s": round(float(duration_s), 3),
        "precision@5": precision,
        "pass": passed,
    }


def case_table(
    conn: Any, thresholds: CaseThresholds, *, run_id: int | None = None, mode: str | None = None
) -> tuple[int, list[dict[str, Any]]]:
    """The run (``run_id``, default the latest) and its rows, by mode then case."""
    if run_id is None:
        row = conn.execute("SELECT max(id) FROM eval_runs").fetchone()
        if row is None or row[0] is None:
            raise LookupError("no evaluation run is stored yet: run `kb eval golden` first")
        run_id = int(row[0])
    rows = conn.execute(
        """
        SELECT case_id, mode, metrics, duration_s FROM eval_cases
        WHERE run_id = %s AND (%s::text IS NULL OR mode = %s)
        ORDER BY mode, case_id
        """,
        (run_id, mode, mode),
    ).fetchall()
    if not rows:
        raise LookupError(
            f"evaluation run {run_id} has no cases" + (f" in mode {mode!r}" if mode else "")
        )
    return run_id, [case_row(r[0], r[1], dict(r[2]), float(r[3]), thresholds) for r in rows]
