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
from kb_core.text.limits import clean_text

log = logging.getLogger(__name__)

Verdict = Literal["helpful", "wrong"]
# What a client may say about the judged answer's mode: anything else is not stored
# (a free-text field here once kept a customer's tax number and surname).
ANSWER_MODES = frozenset({"llm", "extractive"})


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


# A client repeating the same feedback this soon (a retry after a lost answer) gets the
# stored row back instead of a second row and a second «Актуализация RAG» task.
RETRY_WINDOW = "10 minutes"


def record_feedback(
    conn: psycopg.Connection[Any],
    feedback: Feedback,
    *,
    scrub: Callable[[str], str],
    pyrus: CorrectionsPort | None,
    filing: CorrectionFiling,
) -> FeedbackResult:
    """Store the feedback (cleaned and scrubbed, the engineer's name too), then file a
    correction from the stored row when one was given and the corrections form is
    configured: the outbox order, so a failed insert files nothing and a failed filing
    stays pending for the worker (:func:`file_pending`) instead of failing the request."""
    question = scrub(clean_text(feedback.question))
    correction = clean_text(feedback.correction).strip()
    wants_filing = feedback.verdict == "wrong" and bool(correction) and pyrus is not None
    if wants_filing and filing.form_id is None:
        log.warning("console correction not filed: KB_PYRUS_CORRECTIONS_FORM_ID is unset")
        wants_filing = False
    engineer = scrub(clean_text(feedback.engineer)) if feedback.engineer else None
    values = (
        engineer,
        feedback.verdict,
        question,
        feedback.answer_mode if feedback.answer_mode in ANSWER_MODES else None,
        feedback.index_version,
        list(feedback.source_documents),
        scrub(correction) if correction else None,
        scrub(clean_text(feedback.draft)) if feedback.draft else None,
    )
    with conn.transaction():
        # One insert per distinct feedback: the same body again within the window is a
        # retry (the lock makes two concurrent retries wait for each other).
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (question,))
        row = conn.execute(
            "SELECT id FROM console_feedback WHERE engineer IS NOT DISTINCT FROM %s"
            " AND verdict = %s AND question = %s AND correction IS NOT DISTINCT FROM %s"
            f" AND created_at > now() - interval '{RETRY_WINDOW}' ORDER BY id DESC LIMIT 1",
            (values[0], values[1], values[2], values[6]),
        ).fetchone()
        if row is None:
            row = conn.execute(
                "INSERT INTO console_feedback (engineer, verdict, question, answer_mode,"
                " index_version, source_documents, correction, draft, filing)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                (*values, "pending" if wants_filing else "none"),
            ).fetchone()
            log.info("console feedback %s: %s", row[0] if row else None, feedback.verdict)
    assert row is not None
    feedback_id = int(row[0])
    task_id = None
    if pyrus is not None and filing.form_id is not None:
        task_id = _file_one(conn, feedback_id, pyrus, filing)
    url = filing.task_url.format(id=task_id) if task_id is not None else None
    return FeedbackResult(feedback_id, task_id, url)


def _file_one(
    conn: psycopg.Connection[Any],
    feedback_id: int,
    pyrus: CorrectionsPort,
    filing: CorrectionFiling,
) -> int | None:
    """File the row's correction if it is still pending (the row lock keeps two filers
    apart); the task id of the row, filed now or before, or None."""
    assert filing.form_id is not None
    try:
        with conn.transaction():
            row = conn.execute(
                "SELECT filing, correction_task_id, question, draft, correction"
                " FROM console_feedback WHERE id = %s FOR UPDATE",
                (feedback_id,),
            ).fetchone()
            if row is None or row[0] != "pending":
                return int(row[1]) if row is not None and row[1] is not None else None
            _, _, question, draft, correction = row
            created = create_correction_task(
                pyrus,
                filing.form_id,
                [
                    (filing.fields.question, question),
                    (filing.fields.bot_answer, draft or ""),
                    (filing.fields.corrected_answer, correction),
                ],
                filing.texts.console_correction_task_text,
            )
            task_id = int(created["id"])
            conn.execute(
                "UPDATE console_feedback SET filing = 'filed', correction_task_id = %s,"
                " filing_attempts = filing_attempts + 1, filing_error = NULL WHERE id = %s",
                (task_id, feedback_id),
            )
            return task_id
    except ValueError as exc:  # the form lacks a field: retrying will not help
        _filing_failed(conn, feedback_id, str(exc), final=True)
    except Exception as exc:  # Pyrus down or unclear: the worker tries again later
        _filing_failed(conn, feedback_id, f"{type(exc).__name__}: {exc}", final=False)
    return None


def _filing_failed(
    conn: psycopg.Connection[Any], feedback_id: int, error: str, *, final: bool
) -> None:
    log.warning("console feedback %s: correction not filed (%s)", feedback_id, error)
    conn.execute(
        "UPDATE console_feedback SET filing_attempts = filing_attempts + 1,"
        " filing_error = %s, filing = CASE WHEN %s OR filing_attempts >= 9 THEN 'failed'"
        " ELSE filing END WHERE id = %s AND filing = 'pending'",
        (error[:2000], final, feedback_id),
    )


def file_pending(
    conn: psycopg.Connection[Any], pyrus: CorrectionsPort, filing: CorrectionFiling, limit: int = 5
) -> int:
    """File corrections still pending (Pyrus was down when they came); how many filed."""
    if filing.form_id is None:
        return 0
    ids = [
        int(r[0])
        for r in conn.execute(
            "SELECT id FROM console_feedback WHERE filing = 'pending' ORDER BY id LIMIT %s",
            (limit,),
        ).fetchall()
    ]
    return sum(_file_one(conn, i, pyrus, filing) is not None for i in ids)
