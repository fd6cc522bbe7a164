"""Regression cases from approved corrections: each one keeps its question answered.

A correction approved in «Актуализация RAG» is knowledge (a curated entry in the index)
AND a promise: the question it corrects must from then on find the corrected entry. The
cases are derived from the live correction documents at evaluation time, so an approved
correction is protected from its first evaluated refresh on, and a withdrawn one stops
being checked, with no file to keep in step. Questions and reference answers are read
from the scrubbed title and chunks: no personal data reaches eval reports.

Cases in golden files win: a case pinned (reviewed) in ``evals/golden/regressions.jsonl``
replaces the derived one with the same id.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from evals.retrieval import GoldenCase
from kb_core.sources.pyrus_tasks import CORRECTIONS_SOURCE

REGRESSION_ORIGIN = "correction"
REGRESSION_K = 5  # the corrected entry must be among the first five sources


def case_id(external_id: str) -> str:
    return f"{REGRESSION_ORIGIN}-{external_id}"


def correction_cases(conn: Any, namespace: str = "kb") -> list[GoldenCase]:
    """One case per live correction document that has chunks."""
    rows = conn.execute(
        """
        SELECT d.external_id, coalesce(d.safe_title, d.title),
               string_agg(c.text, E'\\n' ORDER BY c.ordinal)
        FROM documents d
        JOIN chunks c ON c.document_id = d.id AND c.valid_to IS NULL AND c.namespace = %s
        WHERE d.source = %s AND d.deleted_at IS NULL
        GROUP BY d.id, d.external_id, coalesce(d.safe_title, d.title)
        ORDER BY d.id
        """,
        (namespace, CORRECTIONS_SOURCE),
    ).fetchall()
    cases = []
    for external_id, title, text in rows:
        answer = str(text or "")
        # The entry's body repeats its question as a heading; the rest is the answer.
        heading = f"# {title}"
        if answer.startswith(heading):
            answer = answer[len(heading) :]
        cases.append(
            GoldenCase(
                id=case_id(str(external_id)),
                question=str(title),
                relevant=frozenset({f"{CORRECTIONS_SOURCE}:{external_id}"}),
                reference_answer=answer.strip(),
                tags=("regression",),
                origin=REGRESSION_ORIGIN,
            )
        )
    return cases


def merged(files: Sequence[GoldenCase], derived: Iterable[GoldenCase]) -> list[GoldenCase]:
    """The golden files' cases, then the derived ones whose ids the files do not hold."""
    known = {c.id for c in files}
    return [*files, *(c for c in derived if c.id not in known)]


def regression_failures(rows: Sequence[dict[str, Any]], cases: Sequence[GoldenCase]) -> list[str]:
    """Gate failures: regression cases whose entry hybrid search did not rank in the top
    ``REGRESSION_K`` (``rows``: the per-case rows of an evaluation)."""
    regression = {c.id for c in cases if c.origin == REGRESSION_ORIGIN}
    failures = []
    for row in rows:
        checked = row["mode"] == "hybrid" and row["case_id"] in regression
        if checked and not row["metrics"].get(f"hit@{REGRESSION_K}"):
            failures.append(
                f"regression case {row['case_id']}: the corrected entry is not among the "
                f"first {REGRESSION_K} sources"
            )
    return failures
