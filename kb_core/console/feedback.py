"""Console feedback: recorded, and a correction becomes an «Актуализация RAG» task.

"Wrong" with the right answer feeds the same loop as a ticket correction: a knowledge
owner approves the task, the pipeline ingests it, and the evaluation gate keeps it
answered from then on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import psycopg

from kb_core.bot.corrections import CorrectionFiling, CorrectionsPort, create_correction_task

log = logging.getLogger(__name__)

Verdict = Literal["helpful", "wrong"]


@dataclass(frozen=True)
class Feedback:
    verdict: Verdict
    question: str
    draft: str = ""  # the answer the engineer judged
    correction: str = ""  # the right answer, when the engineer gave one
    answer_mode: str | None = None
    index_version: int | None = None
    source_documents: Sequence[int] = ()
    engineer: str | None = None


@dataclass(frozen=True)
class FeedbackResult:
    id: int
    correction_task_id: int | None
    correction_url: str | None


def record_feedback(
    conn: psycopg.Connection[Any],
    feedback: Feedback,
    *,
    scrub: Callable[[str], str],
    pyrus: CorrectionsPort | None,
    filing: CorrectionFiling,
) -> FeedbackResult:
    """Store the feedback (scrubbed); file a correction when one was given and the
    corrections form is configured. The task in Pyrus gets the engineer's own words: the
    pipeline scrubs it when it ingests the approved entry."""
    task_id = None
    correction = feedback.correction.strip()
    if feedback.verdict == "wrong" and correction and pyrus is not None:
        if filing.form_id is None:
            log.warning("console correction not filed: KB_PYRUS_CORRECTIONS_FORM_ID is unset")
        else:
            created = create_correction_task(
                pyrus,
                filing.form_id,
                [
                    (filing.fields.question, feedback.question),
                    (filing.fields.bot_answer, feedback.draft),
                    (filing.fields.corrected_answer, correction),
                ],
                filing.texts.console_correction_task_text,
            )
            task_id = int(created["id"])
    row = conn.execute(
        "INSERT INTO console_feedback (engineer, verdict, question, answer_mode, index_version,"
        " source_documents, correction, correction_task_id)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (
            feedback.engineer,
            feedback.verdict,
            scrub(feedback.question),
            feedback.answer_mode,
            feedback.index_version,
            list(feedback.source_documents),
            scrub(correction) if correction else None,
            task_id,
        ),
    ).fetchone()
    assert row is not None
    log.info("console feedback %s: %s", row[0], feedback.verdict)
    url = filing.task_url.format(id=task_id) if task_id is not None else None
    return FeedbackResult(int(row[0]), task_id, url)
