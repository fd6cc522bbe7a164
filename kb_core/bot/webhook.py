"""Pyrus bot webhooks: signature check, parsing, and whether the bot should answer.

Pyrus signs the raw request body with the bot's security key (HMAC-SHA1, hex). The body
carries the whole task as GET /tasks returns it. Which comments make the bot act is
decided by :func:`decide` alone (the rules are listed there and in docs/bot.md): a new
ticket, a mention of THIS bot, a correction, or the agent's command to send the draft.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from kb_core.errors import KbError
from kb_core.text.limits import INT64_MAX, json_depth_exceeds

Trigger = Literal["new_ticket", "mention", "correction", "send"]

# A correction marker counts when it opens the comment, after the mention of the bot
# («@Бот исправление: …», «Бот, поправка — …»): a word this far in, or less.
MARKER_WITHIN_CHARS = 60
_TAG = re.compile(r"<[^>]+>")


class WebhookError(KbError, ValueError):
    """A webhook body the bot cannot use; the message says why (returned as 400)."""


def valid_signature(body: bytes, signature: str | None, security_key: str) -> bool:
    """Constant-time check of ``X-Pyrus-Sig`` (hex, any case) against the raw body."""
    if not signature or not security_key:
        return False
    expected = hmac.new(security_key.encode("utf-8"), body, hashlib.sha1).hexdigest()
    # Bytes, not str: compare_digest raises on non-ASCII text (a hostile header was a 500).
    given = signature.strip().lower().encode("utf-8", "replace")
    return hmac.compare_digest(expected.encode("ascii"), given)


# Ids are bigint in the database: a larger number is refused here (400), not by the insert.
Id = Annotated[int, Field(ge=0, le=INT64_MAX)]
DEFAULT_MAX_DEPTH = 64


class WebhookTask(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: Id
    create_date: datetime | None = None
    comments: list[dict[str, Any]] = []
    fields: list[dict[str, Any]] | None = None


class WebhookEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    event: str
    task_id: Id
    user_id: Id | None = None
    task: WebhookTask


class _Author(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: Id | None = None
    type: str | None = None


class _Comment(BaseModel):
    """The parts of a comment the trigger rules read, checked up front: a wrong type
    there (an id "abc", an author id that is a list) is a 400, not an error mid-rule."""

    model_config = ConfigDict(extra="allow")

    id: Id
    author: _Author | None = None
    create_date: str | None = None
    delete_comment_id: Id | None = None
    mentions: list[Id | dict[str, Any] | str] | None = None
    field_updates: list[dict[str, Any]] | None = None


_COMMENTS = TypeAdapter(list[_Comment])


def _problems(exc: ValidationError, prefix: str = "") -> str:
    return "; ".join(
        f"{prefix}{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
        for error in exc.errors()
    )


def parse_event(body: bytes, *, max_depth: int = DEFAULT_MAX_DEPTH) -> WebhookEvent:
    if json_depth_exceeds(body, max_depth):
        raise WebhookError(f"JSON nested deeper than {max_depth} levels")
    try:
        raw = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise WebhookError(f"body is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise WebhookError("body is not a JSON object")
    try:
        event = WebhookEvent.model_validate(raw)
    except ValidationError as exc:
        raise WebhookError(f"missing or invalid fields: {_problems(exc)}") from None
    try:
        _COMMENTS.validate_python(event.task.comments)
    except ValidationError as exc:
        raise WebhookError(f"invalid comment: {_problems(exc, 'task.comments.')}") from None
    if event.task.id != event.task_id:
        raise WebhookError("task_id does not match task.id")
    return event


@dataclass(frozen=True)
class Decision:
    """What to do with a webhook: a job to run, or why it is ignored."""

    trigger: Trigger | None
    comment_id: int | None
    reason: str


def _author(comment: dict[str, Any]) -> dict[str, Any]:
    author = comment.get("author")
    return author if isinstance(author, dict) else {}


def _mentions(comment: dict[str, Any]) -> set[int]:
    found: set[int] = set()
    for mention in comment.get("mentions") or []:
        value = mention.get("id") if isinstance(mention, dict) else mention
        if isinstance(value, int | str) and str(value).isdigit():
            found.add(int(value))
    return found


def correction_text(text: str, markers: Sequence[str]) -> str | None:
    """The corrected answer after a correction marker near the start of ``text``, "" when
    the marker stands alone, None when there is no marker."""
    for marker in markers:
        pattern = re.compile(rf"(?<!\w){re.escape(marker)}(?!\w)", re.IGNORECASE)
        found = pattern.search(text)
        if found is not None and found.start() <= MARKER_WITHIN_CHARS:
            return text[found.end() :].lstrip(" \t:-—–,.").strip()
    return None


def _ticks_field(
    comment: dict[str, Any], fields: Sequence[dict[str, Any]], code: str | None
) -> bool:
    """Whether the comment sets the checkmark field ``code`` (updates name fields by id)."""
    if not code:
        return False
    ids = {f.get("id") for f in fields if f.get("code") == code}
    for update in comment.get("field_updates") or []:
        named = update.get("code") == code or update.get("id") in ids
        if named and update.get("value") in ("checked", True):
            return True
    return False


def decide(
    event: WebhookEvent,
    bot_ids: Collection[int],
    *,
    correction_markers: Sequence[str] = (),
    wrong_answer_field: str | None = None,
    own_ids: Collection[int] = (),
    send_commands: Sequence[str] = (),
    send_field: str | None = None,
) -> Decision:
    """The bot's trigger rules, in one place (docs/bot.md repeats them for people).

    ``own_ids`` (with the webhook's ``user_id``) are THIS bot; ``bot_ids`` are other bots
    (KB_PYRUS_BOT_IDS), whose comments are excluded like ours. Rules, first match wins:

    1. Not a ``comment`` event, or the last comment is an edit or a deletion: ignore.
    2. The last comment is by a bot (``type == "bot"``, our id or one of ``bot_ids``):
       ignore, so bots never talk to each other.
    3. The ticket is closed: ignore, except a correction (rule 4), which is about the
       knowledge base rather than the ticket.
    4. A person ticks the "bot answer wrong" field, or mentions THIS bot with a
       correction marker: ``correction``.
    5. A person ticks the "send the draft" field, or mentions THIS bot with a send
       command: ``send`` (the bot's latest draft goes to the customer).
    6. A person mentions THIS bot: ``mention`` (a fresh answer).
    7. The last comment is the ticket's first (a single comment, or created with the
       task): ``new_ticket``.
    8. Anything else (a plain reply, a mention of a person or of another bot): ignore.
    """
    if event.event != "comment":
        return Decision(None, None, f"event {event.event!r}")
    own = set(own_ids) | ({event.user_id} if event.user_id is not None else set())
    if not event.task.comments:
        return Decision("new_ticket", 0, "new ticket without comments")
    last = event.task.comments[-1]
    if last.get("edit_comment_id") or last.get("delete_comment_id"):
        return Decision(None, None, "an edit or a deletion of a comment")
    comments = [
        c
        for c in event.task.comments
        if not (c.get("edit_comment_id") or c.get("delete_comment_id"))
    ]
    author = _author(last)
    if author.get("type") == "bot" or author.get("id") in own | set(bot_ids):
        return Decision(None, None, "comment by a bot")
    comment_id = int(last.get("id", 0))
    fields = getattr(event.task, "fields", None) or []
    closed = bool(getattr(event.task, "is_closed", False))
    mentioned = bool(own & _mentions(last))
    text = str(last.get("text") or "") or _TAG.sub(" ", str(last.get("formatted_text") or ""))
    if _ticks_field(last, fields, wrong_answer_field) or (
        mentioned and correction_text(text, correction_markers) is not None
    ):
        return Decision("correction", comment_id, "a correction of the bot's answer")
    if closed:
        return Decision(None, None, "the ticket is closed")
    if _ticks_field(last, fields, send_field) or (
        mentioned and correction_text(text, send_commands) is not None
    ):
        return Decision("send", comment_id, "the agent sends the bot's draft")
    if mentioned:
        return Decision("mention", comment_id, "the bot is mentioned")
    created = last.get("create_date")
    task_created = event.task.create_date
    same_time = (
        task_created is not None
        and isinstance(created, str)
        and _parse_time(created) == task_created
    )
    if len(comments) == 1 or same_time:
        return Decision("new_ticket", comment_id, "new ticket")
    if _mentions(last):
        return Decision(None, None, "a comment that mentions someone else")
    return Decision(None, None, "a comment that does not mention the bot")


def _parse_time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
