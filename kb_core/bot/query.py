"""What the bot searches for, built from the task as Pyrus returns it now.

A new ticket is asked by its subject and description fields. When the bot is mentioned,
the whole conversation matters: the ticket plus every comment except bots' (edits and
deletions applied), so a second answer uses what the conversation added since the first.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from kb_core.sources.pyrus_tasks import TicketFields, comment_history, field_text


def ticket_question(task: dict[str, Any], fields: TicketFields) -> str:
    """Subject and description fields (falling back to the task's text / first comment)."""
    parts = [field_text(task, fields.subject) or str(task.get("subject") or "")]
    parts += [field_text(task, code) for code in fields.description]
    if not any(p.strip() for p in parts[1:]):
        history = comment_history(task)
        parts.append(str(task.get("text") or "") or (history[0].text if history else ""))
    return "\n".join(p.strip() for p in parts if p and p.strip())


def build_query(
    task: dict[str, Any], trigger: str, fields: TicketFields, bot_ids: Collection[int]
) -> str:
    question = ticket_question(task, fields)
    if trigger != "mention":
        return question
    conversation = [c.text for c in comment_history(task) if not c.is_bot(bot_ids) and c.text]
    # The first comment of a new ticket usually repeats the description.
    if conversation and conversation[0].strip() in question:
        conversation = conversation[1:]
    return "\n".join([question, *conversation])
