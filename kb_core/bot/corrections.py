"""Filing an agent's correction of a bot answer as an «Актуализация RAG» task.

An agent who finds the bot's answer wrong mentions the bot with a correction marker
(«@Бот исправление: правильный ответ…») or ticks the "bot answer wrong" field. The bot
files a task in the corrections form, prefilled with the ticket's question, the bot's
last draft, the agent's corrected answer and a link to the ticket, for a knowledge owner
to approve; it then tells the agent where the task is. Once approved, the pipeline
ingests the task as a curated entry (see kb_core.sources.pyrus_tasks) and the eval gate
keeps it answered (evals.regressions).

A retried job files at most one task: the filed task is recorded against the job before
the agent is told, and the confirmation carries the job marker.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg

from kb_core.bot.query import ticket_question
from kb_core.bot.webhook import correction_text
from kb_core.settings import Settings
from kb_core.sources import configured
from kb_core.sources.pyrus_tasks import CorrectionFields, TicketFields, comment_history
from kb_core.texts import Texts

log = logging.getLogger(__name__)


class CorrectionsPort(Protocol):
    def get_form(self, form_id: int) -> dict[str, Any]: ...

    def create_task(
        self, form_id: int, fields: list[dict[str, Any]], *, text: str | None = None
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class CorrectionFiling:
    """Where and how corrections are filed (from settings)."""

    form_id: int | None
    fields: CorrectionFields
    markers: Sequence[str]
    task_url: str  # with {id}
    texts: Texts

    @classmethod
    def from_settings(cls, settings: Settings, texts: Texts) -> CorrectionFiling:
        return cls(
            form_id=settings.pyrus.corrections_form_id,
            fields=configured.correction_builder(settings).fields,
            markers=settings.bot.correction_markers,
            task_url=settings.pyrus.task_url,
            texts=texts,
        )


@dataclass(frozen=True)
class Filed:
    correction_task_id: int | None  # None: the corrections form is not configured
    reason: str  # mention | field
    already: bool


def _last_draft(conn: psycopg.Connection[Any], task_id: int) -> str:
    row = conn.execute(
        "SELECT answer ->> 'draft_reply' FROM bot_interactions WHERE task_id = %s "
        "ORDER BY id DESC LIMIT 1",
        (task_id,),
    ).fetchone()
    return str(row[0]) if row and row[0] else ""


def _field_ids(form: dict[str, Any]) -> dict[str, int]:
    return {str(f["code"]): int(f["id"]) for f in form.get("fields", []) if f.get("code")}


def correction_request(
    task: dict[str, Any], comment_id: int | None, markers: Sequence[str]
) -> tuple[str, str]:
    """(reason, the agent's corrected answer) from the comment that triggered the job."""
    comment = next((c for c in comment_history(task) if c.id == comment_id), None)
    text = comment.text if comment else ""
    corrected = correction_text(text, markers)
    if corrected is not None:
        return "mention", corrected
    # The field was ticked: whatever the agent wrote with it is the correction.
    return "field", text.strip()


def create_correction_task(
    pyrus: CorrectionsPort, form_id: int, values: Sequence[tuple[str, Any]], text: str
) -> dict[str, Any]:
    """Create an «Актуализация RAG» task from (field code, value) pairs; empty values are
    left out. Raises ValueError naming the codes the form lacks."""
    ids = _field_ids(pyrus.get_form(form_id))
    missing = [code for code, _ in values if code not in ids]
    if missing:
        raise ValueError(
            f"corrections form {form_id} has no field(s) {', '.join(missing)}: "
            "check the form or the field codes"
        )
    fields = [{"id": ids[code], "value": value} for code, value in values if value]
    return pyrus.create_task(form_id, fields, text=text)


def file_correction(
    conn: psycopg.Connection[Any],
    pyrus: CorrectionsPort,
    filing: CorrectionFiling,
    *,
    job_id: int,
    task: dict[str, Any],
    comment_id: int | None,
    ticket_fields: TicketFields,
) -> Filed:
    """File the correction (once per job) and return the filed task's id."""
    reason, corrected = correction_request(task, comment_id, filing.markers)
    row = conn.execute(
        "SELECT correction_task_id FROM correction_requests WHERE job_id = %s", (job_id,)
    ).fetchone()
    if row is not None:
        return Filed(int(row[0]), reason, True)
    if filing.form_id is None:
        log.warning("job %s: correction not filed, KB_PYRUS_CORRECTIONS_FORM_ID is unset", job_id)
        return Filed(None, reason, False)
    ticket_url = filing.task_url.format(id=task["id"])
    values: list[tuple[str, Any]] = [
        (filing.fields.question, ticket_question(task, ticket_fields)),
        (filing.fields.bot_answer, _last_draft(conn, int(task["id"]))),
        (filing.fields.corrected_answer, corrected),
        (filing.fields.ticket, {"task_ids": [int(task["id"])]}),
    ]
    created = create_correction_task(
        pyrus, filing.form_id, values, filing.texts.correction_task_text.format(url=ticket_url)
    )
    conn.execute(
        "INSERT INTO correction_requests (job_id, ticket_id, correction_task_id, reason) "
        "VALUES (%s, %s, %s, %s)",
        (job_id, int(task["id"]), int(created["id"]), reason),
    )
    log.info("job %s: correction of task %s filed as task %s", job_id, task["id"], created["id"])
    return Filed(int(created["id"]), reason, False)
