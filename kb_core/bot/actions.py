"""What an agent explicitly does with the bot's draft: send it to the customer, or mark it
wrong. Both are recorded (``agent_actions``) and override the similarity-based guess of
the effect statistics (``ticket_outcomes.agent_action``): an agent who sends the draft
accepted it; an agent who corrects it did not.

Sending happens at most once per draft, whatever the retries: Pyrus' webhook retries are
one job (the queue's dedupe key); a job retried after a crash first looks for its reply
on the task (a bot comment on the customer channel with the draft's text) before
posting; and ``agent_actions`` holds one ``sent`` row per draft (unique index), so a
second command for the same draft answers "already sent".
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import psycopg

from kb_core.sources.pyrus_tasks import comment_history

log = logging.getLogger(__name__)

Action = Literal["sent", "corrected"]
SendStatus = Literal["sent", "already_sent", "no_draft", "no_channel"]


class CommentPoster(Protocol):
    def post_comment(
        self, task_id: int, *, formatted_text: str | None = None, **extra: Any
    ) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Draft:
    interaction_id: int
    text: str


@dataclass(frozen=True)
class SendResult:
    status: SendStatus
    comment_id: int | None = None


def latest_draft(conn: psycopg.Connection[Any], task_id: int) -> Draft | None:
    """The bot's latest answer on the ticket with a draft reply (corrections have none)."""
    row = conn.execute(
        """
        SELECT id, answer ->> 'draft_reply' FROM bot_interactions
        WHERE task_id = %s AND trigger IN ('new_ticket', 'mention')
          AND coalesce(answer ->> 'draft_reply', '') <> ''
        ORDER BY id DESC LIMIT 1
        """,
        (task_id,),
    ).fetchone()
    return Draft(int(row[0]), str(row[1])) if row else None


def customer_channel(task: dict[str, Any], bot_ids: Collection[int]) -> dict[str, Any] | None:
    """The channel the customer wrote through (their latest comment that has one; else
    any person's), as ``POST /tasks/{id}/comments`` takes it. None: an internal ticket."""
    customer = (task.get("author") or {}).get("id")
    people = [
        raw
        for raw in task.get("comments") or []
        if isinstance(raw.get("channel"), dict)
        and raw["channel"].get("type")
        and (raw.get("author") or {}).get("type") != "bot"
        and (raw.get("author") or {}).get("id") not in bot_ids
    ]
    theirs = [raw for raw in people if (raw.get("author") or {}).get("id") == customer]
    chosen = (theirs or people)[-1:] or None
    return {"type": chosen[0]["channel"]["type"]} if chosen else None


def _sent_reply_id(task: dict[str, Any], draft: str, bot_ids: Collection[int]) -> int | None:
    for comment in comment_history(task):
        if comment.is_bot(bot_ids) and comment.channel and comment.text.strip() == draft.strip():
            return comment.id
    return None


def record_action(
    conn: psycopg.Connection[Any],
    *,
    job_id: int,
    task_id: int,
    action: Action,
    interaction_id: int | None,
    comment_id: int | None = None,
) -> None:
    """Store the action (once per job) and mark the ticket's outcome row, if the daily
    statistics already hold it; the next collection reads ``agent_actions`` anyway."""
    conn.execute(
        """
        INSERT INTO agent_actions (job_id, task_id, interaction_id, action, comment_id)
        VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING
        """,
        (job_id, task_id, interaction_id, action, comment_id),
    )
    conn.execute(
        """
        UPDATE ticket_outcomes SET agent_action = %s, updated_at = now(),
               outcome = CASE WHEN bot_answered THEN %s ELSE outcome END
        WHERE task_id = %s
        """,
        (action, explicit_outcome(action), task_id),
    )


def explicit_outcome(action: str) -> Literal["accepted", "rewritten"]:
    """The outcome an explicit action stands for: a sent draft was accepted as it is; a
    corrected one was wrong, so whatever the agent replied was their own."""
    return "accepted" if action == "sent" else "rewritten"


def latest_action(conn: psycopg.Connection[Any], task_id: int) -> str | None:
    row = conn.execute(
        "SELECT action FROM agent_actions WHERE task_id = %s ORDER BY id DESC LIMIT 1",
        (task_id,),
    ).fetchone()
    return str(row[0]) if row else None


def send_draft(
    conn: psycopg.Connection[Any],
    pyrus: CommentPoster,
    *,
    job_id: int,
    task: dict[str, Any],
    bot_ids: Collection[int],
) -> SendResult:
    """Post the bot's latest draft to the customer, once (see the module docstring)."""
    task_id = int(task["id"])
    draft = latest_draft(conn, task_id)
    if draft is None:
        return SendResult("no_draft")
    row = conn.execute(
        "SELECT comment_id FROM agent_actions WHERE interaction_id = %s AND action = 'sent'",
        (draft.interaction_id,),
    ).fetchone()
    if row is not None:
        return SendResult("already_sent", row[0])
    channel = customer_channel(task, bot_ids)
    if channel is None:
        return SendResult("no_channel")
    comment_id = _sent_reply_id(task, draft.text, bot_ids)
    if comment_id is None:
        posted = pyrus.post_comment(task_id, text=draft.text, channel=channel)
        comment_id = _sent_reply_id(posted, draft.text, bot_ids) if "comments" in posted else None
    else:
        log.info("job %s: the draft was already on the task (comment %s)", job_id, comment_id)
    record_action(
        conn,
        job_id=job_id,
        task_id=task_id,
        action="sent",
        interaction_id=draft.interaction_id,
        comment_id=comment_id,
    )
    return SendResult("sent", comment_id)
