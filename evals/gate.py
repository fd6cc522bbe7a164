"""The promotion gate's reading of the evaluation: the latest verdict on an index version.

``run_eval`` (evals.harness) stores each run's gate in ``eval_runs``; the pipeline's
blocking check asks here whether the candidate's latest run passed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg


@dataclass(frozen=True)
class GateVerdict:
    """The latest evaluation run of one index version and what its gate said."""

    run_id: int
    passed: bool
    failures: list[str] = field(default_factory=list)


def latest_verdict(conn: psycopg.Connection[Any], version: int) -> GateVerdict | None:
    """The newest evaluation of ``version``; None when it was never evaluated."""
    row = conn.execute(
        "SELECT id, passed, gate FROM eval_runs WHERE index_version = %s ORDER BY id DESC LIMIT 1",
        (version,),
    ).fetchone()
    if row is None:
        return None
    run_id, passed, gate = row
    return GateVerdict(
        run_id=int(run_id), passed=bool(passed), failures=list((gate or {}).get("failures", []))
    )
