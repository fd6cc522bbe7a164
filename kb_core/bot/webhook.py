"""Pyrus bot webhooks: signature check, parsing, and whether the bot should answer.

Pyrus signs the raw request body with the bot's security key (HMAC-SHA1, hex). The body
carries the whole task as GET /tasks returns it; the bot answers a new ticket (the last
comment was created with the task, or the task has a single comment) or a comment that
mentions it, and never its own comments or another bot's.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

Trigger = Literal["new_ticket", "mention"]


class WebhookError(ValueError):
    """A webhook body the bot cannot use; the message says why (returned as 400)."""


def valid_signature(body: bytes, signature: str | None, security_key: str) -> bool:
    """Constant-time check of ``X-Pyrus-Sig`` (hex, any case) against the raw body."""
    if not signature or not security_key:
        return False
    expected = hmac.new(security_key.encode("utf-8"), body, hashlib.sha1).hexdigest()
    return hmac.compare_digest(expected, signature.strip().lower())


class WebhookTask(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: int
    create_date: datetime | None = None
    comments: list[dict[str, Any]] = []


class WebhookEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    event: str
    task_id: int
    user_id: int | None = None
    task: WebhookTask


def parse_event(body: bytes) -> WebhookEvent:
    try:
        raw = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WebhookError(f"body is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise WebhookError("body is not a JSON object")
    try:
        event = WebhookEvent.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise WebhookError(f"missing or invalid fields: {problems}") from None
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


def decide(event: WebhookEvent, bot_ids: Collection[int]) -> Decision:
    """New ticket, mention of the bot, or ignore (with the reason, for metrics and logs)."""
    if event.event != "comment":
        return Decision(None, None, f"event {event.event!r}")
    own = set(bot_ids) | ({event.user_id} if event.user_id is not None else set())
    comments = [c for c in event.task.comments if not c.get("delete_comment_id")]
    if not comments:
        return Decision("new_ticket", 0, "new ticket without comments")
    last = comments[-1]
    author = _author(last)
    if author.get("type") == "bot" or author.get("id") in own:
        return Decision(None, None, "comment by a bot")
    comment_id = int(last.get("id", 0))
    if own & _mentions(last):
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
    return Decision(None, None, "a comment that does not mention the bot")


def _parse_time(value: str) -> datetime | None:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
