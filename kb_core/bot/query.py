"""What the bot searches for, built from the task as Pyrus returns it now.

``ticket_question`` is the ticket's question alone (subject and description fields), for
filing corrections and classifying. ``build_query`` reads the whole ticket: fields and
every comment except bots' (edits and deletions applied), the mention first, so a second
answer uses what the conversation added since the first.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from kb_core.bot.ticket_text import read_ticket, search_query
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
    task: dict[str, Any],
    trigger: str,
    fields: TicketFields,
    bot_ids: Collection[int],
    *,
    mention_id: int | None = None,
    max_chars: int = 1200,
) -> str:
    """The search query of the whole ticket without attachments (see
    :func:`kb_core.bot.ticket_text.search_query`); a mention puts its comment (the last
    one, unless ``mention_id`` says which) first."""
    ticket = read_ticket(task, fields, bot_ids, skip_codes=(fields.category,))
    if trigger == "mention" and mention_id is None and ticket.comments:
        mention_id = ticket.comments[-1].id
    return search_query(
        ticket, mention_id=mention_id if trigger == "mention" else None, max_chars=max_chars
    )
