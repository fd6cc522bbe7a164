"""What the bot's help amounted to on one ticket, read from the Pyrus task itself.

Definitions (one ticket, as Pyrus returns it with its comment history):

- **agent reply**: a comment sent to the customer through a channel by neither the
  customer nor a bot, as finally edited (``TicketDocumentBuilder.resolution``, the same
  replies the knowledge base learns from). Internal notes and the bot's own comment are
  not replies.
- **first response** (``first_response_s``): seconds from the task's ``create_date`` to
  the first agent reply; None while there is none.
- **resolution** (``resolution_s``): seconds from ``create_date`` to ``close_date`` of a
  closed task; None while it is open.
- **draft similarity** (``draft_similarity``): the highest chrF (sacrebleu, character
  6-grams, β = 2, 0..1) of an agent reply, as hypothesis, against the bot's draft, as
  reference. β = 2 weighs recall, so the score says how much of the draft ended up in
  the reply; markup (Markdown converted from ``formatted_text``, links, list markers) and
  whitespace are removed from both sides first, so formatting alone never costs points.
- **outcome**:
  ``not_used`` — the bot posted no draft on this ticket;
  ``no_reply`` — there is a draft but no agent reply yet;
  ``accepted`` — similarity ≥ the accepted threshold (KB_EFFECT_ACCEPTED_SIMILARITY);
  ``edited`` — similarity ≥ the edited threshold (KB_EFFECT_EDITED_SIMILARITY);
  ``rewritten`` — below both.
- **agent replies** (``agent_replies``): how many agent replies the ticket has.
- **reopened**: a comment with ``action`` "reopened" (the ticket was closed and opened
  again, by the customer's answer or by an agent).
- **day**: the calendar day of ``create_date`` in the statistics time zone, so a ticket
  filed at 01:00 Moscow time counts for that Moscow day, not the previous UTC one.

The ticket's category and who chose it (``category_from_task``) come from the task's
category field and the ``field_updates`` of its comments. Nothing here keeps ticket text:
the result is numbers and labels only.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sacrebleu import sentence_chrf

from kb_core.sources.cursor import parse_time
from kb_core.sources.pyrus_tasks import TicketDocumentBuilder, field_by_code, field_text

Outcome = Literal["accepted", "edited", "rewritten", "not_used", "no_reply"]
OUTCOMES: tuple[Outcome, ...] = ("accepted", "edited", "rewritten", "not_used", "no_reply")
CategorySource = Literal["agent", "bot", "classifier"]


@dataclass(frozen=True)
class TicketOutcome:
    """One ``ticket_outcomes`` row without its category columns (the caller decides those)."""

    task_id: int
    form_id: int | None
    day: date
    bot_answered: bool
    bot_mode: str | None
    draft_similarity: float | None
    outcome: Outcome
    first_response_s: float | None
    resolution_s: float | None
    is_closed: bool
    agent_replies: int | None = None  # agent replies to the customer (see above)
    reopened: bool | None = None  # a comment reopened the ticket after it was closed


def _is_bot(author: dict[str, Any], bot_ids: Collection[int]) -> bool:
    return author.get("type") == "bot" or (
        author.get("id") is not None and int(author["id"]) in bot_ids
    )


def category_from_task(
    task: dict[str, Any], field_code: str, bot_ids: Collection[int] = ()
) -> tuple[str, str] | None:
    """(category name, "bot" | "agent") from the task's category field; None when empty.

    "bot" means the category in the field is the bot's: the latest comment whose
    ``field_updates`` touched the field was a bot's, so no person changed it since. Any
    other case is "agent", including a field with no visible history (set on the form
    when the ticket was filed, or before the bot existed): a person's choice is then the
    only explanation we can give.
    """
    item = field_by_code(task, field_code)
    name = field_text(task, field_code)
    if item is None or not name:
        return None
    field_id = item.get("id")
    setter: dict[str, Any] | None = None
    for comment in task.get("comments") or []:
        for update in comment.get("field_updates") or []:
            touches = (field_id is not None and update.get("id") == field_id) or (
                update.get("id") is None and update.get("code") == field_code
            )
            if touches:
                setter = comment.get("author") or {}
    source = "bot" if setter is not None and _is_bot(setter, bot_ids) else "agent"
    return name, source


_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MARKUP = re.compile(r"\*\*|__|`+|^[ \t]{0,3}(?:#{1,6}|>|[-*+]|\d{1,3}[.)])[ \t]+", re.MULTILINE)


def plain_text(text: str) -> str:
    """Text without Markdown markup and with single spaces, for a fair comparison.

    Replies written in the rich editor arrive as ``formatted_text`` (HTML), which the
    comment history turns into Markdown; the bot's draft is plain text. Comparing them
    as they are would count ``**`` and ``- `` against the agent.
    """
    text = _LINK.sub(r"\1", text)
    text = _MARKUP.sub("", text)
    return " ".join(text.split())


def draft_similarity(reply: str, draft: str) -> float:
    """chrF of one reply against the draft, 0..1 (see the module docstring)."""
    hypothesis, reference = plain_text(reply), plain_text(draft)
    if not hypothesis or not reference:
        return 0.0
    return float(sentence_chrf(hypothesis, [reference]).score) / 100.0


def classify(similarity: float, *, accepted: float, edited: float) -> Outcome:
    if similarity >= accepted:
        return "accepted"
    if similarity >= edited:
        return "edited"
    return "rewritten"


def ticket_outcome(
    task: dict[str, Any],
    *,
    draft: str | None,
    bot_mode: str | None,
    bot_ids: Collection[int],
    tz: ZoneInfo,
    accepted: float,
    edited: float,
) -> TicketOutcome:
    """The ticket's outcome row; ``draft`` is the bot's draft reply (None: it posted none)."""
    created = parse_time(task.get("create_date"))
    if created is None:
        raise ValueError(f"task {task.get('id')} has no create_date")
    closed = parse_time(task.get("close_date"))
    is_closed = bool(task.get("is_closed"))
    replies = TicketDocumentBuilder(bot_ids=frozenset(bot_ids)).resolution(task)

    first = next((reply.created for reply in replies if reply.created is not None), None)
    first_response_s = (first - created).total_seconds() if first is not None else None
    resolution_s = (closed - created).total_seconds() if is_closed and closed is not None else None

    answered = bool(draft and draft.strip())
    similarity: float | None = None
    outcome: Outcome
    if not answered:
        outcome = "not_used"
    elif not replies:
        outcome = "no_reply"
    else:
        assert draft is not None
        similarity = max(draft_similarity(reply.text, draft) for reply in replies)
        outcome = classify(similarity, accepted=accepted, edited=edited)

    return TicketOutcome(
        task_id=int(task["id"]),
        form_id=int(task["form_id"]) if task.get("form_id") is not None else None,
        day=created.astimezone(tz).date(),
        bot_answered=answered,
        bot_mode=bot_mode if answered else None,
        draft_similarity=similarity,
        outcome=outcome,
        first_response_s=first_response_s,
        resolution_s=resolution_s,
        is_closed=is_closed,
        agent_replies=len(replies),
        reopened=any(
            (comment.get("action") == "reopened") for comment in task.get("comments") or []
        ),
    )
