"""A knowledge owner approves a correction from the console.

The same decision a knowledge owner makes in Pyrus («Решение» = «Одобрено» on the
«Актуализация RAG» task), made through the bot's account with the approver's role
checked by the console; the corrections sensor then ingests the entry as usual.
"""

from __future__ import annotations

from typing import Any, Protocol

from kb_core.bot.corrections import CorrectionFiling
from kb_core.errors import KbError


class ApprovalPort(Protocol):
    def get_task(self, task_id: int) -> dict[str, Any]: ...

    def get_form(self, form_id: int) -> dict[str, Any]: ...

    def post_comment(self, task_id: int, **kwargs: Any) -> dict[str, Any]: ...


class NotACorrection(KbError, LookupError):
    """The task is not on the corrections form (or the form is not configured)."""


def approve_correction(pyrus: ApprovalPort, filing: CorrectionFiling, task_id: int) -> None:
    """Set the task's decision to the approved choice, with a comment saying so."""
    if filing.form_id is None:
        raise NotACorrection(
            "the corrections form is not configured (KB_PYRUS_CORRECTIONS_FORM_ID)"
        )
    task = pyrus.get_task(task_id)
    if int(task.get("form_id") or 0) != filing.form_id:
        raise NotACorrection(f"task {task_id} is not on the corrections form")
    form = pyrus.get_form(filing.form_id)
    decision = next(
        (f for f in form.get("fields", []) if f.get("code") == filing.fields.decision), None
    )
    if decision is None:
        raise NotACorrection(f"the corrections form has no field {filing.fields.decision}")
    options = (decision.get("info") or {}).get("options", [])
    choice = next(
        (o["choice_id"] for o in options if o.get("choice_value") == filing.fields.approved_value),
        None,
    )
    value: Any = {"choice_ids": [choice]} if choice is not None else filing.fields.approved_value
    pyrus.post_comment(
        task_id,
        text=filing.texts.console_correction_approved,
        field_updates=[{"id": decision["id"], "value": value}],
    )
