"""Reading Pyrus tasks: comment history, resolved tickets and curated corrections.

Comment history is the list as a reader sees it: a comment carrying ``edit_comment_id``
replaces the text of the one it edits, one carrying ``delete_comment_id`` removes its
target, and neither is a message of its own. Bot comments (author type ``bot`` or a
configured bot id) are recognisable so they never feed the knowledge base or a query.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kb_core.models import SourceDocument
from kb_core.sources.cursor import parse_time
from kb_core.text.markdown import html_to_markdown

TICKETS_SOURCE = "pyrus"
CORRECTIONS_SOURCE = "correction"


@dataclass(frozen=True)
class Comment:
    id: int
    author_id: int | None
    author_type: str
    text: str
    created: datetime | None
    channel: str | None  # None: internal (participants only)
    mentions: tuple[int, ...] = ()
    action: str | None = None

    def is_bot(self, bot_ids: Collection[int] = ()) -> bool:
        return self.author_type == "bot" or (
            self.author_id is not None and self.author_id in bot_ids
        )


def _comment_text(raw: dict[str, Any]) -> str:
    if raw.get("text"):
        return str(raw["text"]).strip()
    if raw.get("formatted_text"):
        return html_to_markdown(str(raw["formatted_text"])).strip()
    return ""


def comment_history(task: dict[str, Any]) -> list[Comment]:
    """The task's comments in order, with edits and deletions applied."""
    ordered: dict[int, Comment] = {}
    for raw in task.get("comments", []):
        target_edit = raw.get("edit_comment_id")
        target_delete = raw.get("delete_comment_id")
        if target_delete:
            ordered.pop(int(target_delete), None)
            continue
        if target_edit:
            original = ordered.get(int(target_edit))
            if original is not None:
                ordered[original.id] = Comment(
                    id=original.id,
                    author_id=original.author_id,
                    author_type=original.author_type,
                    text=_comment_text(raw),
                    created=original.created,
                    channel=original.channel,
                    mentions=original.mentions,
                    action=original.action,
                )
            continue
        author = raw.get("author") or {}
        ordered[int(raw["id"])] = Comment(
            id=int(raw["id"]),
            author_id=int(author["id"]) if author.get("id") is not None else None,
            author_type=str(author.get("type", "user")),
            text=_comment_text(raw),
            created=parse_time(raw.get("create_date")),
            channel=(raw.get("channel") or {}).get("type"),
            mentions=tuple(int(m) for m in raw.get("mentions") or []),
            action=raw.get("action"),
        )
    return list(ordered.values())


def field_by_code(task: dict[str, Any], code: str) -> dict[str, Any] | None:
    """A task field by its code, looking inside title fields too."""

    def walk(fields: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
        for item in fields:
            if item.get("code") == code:
                return item
            nested = (
                (item.get("value") or {}).get("fields") if item.get("type") == "title" else None
            )
            if nested:
                found = walk(nested)
                if found is not None:
                    return found
        return None

    return walk(task.get("fields", []))


def field_text(task: dict[str, Any], code: str) -> str:
    """A field's value as text (catalog → its first value, choice → its names)."""
    item = field_by_code(task, code)
    if item is None:
        return ""
    value = item.get("value")
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        if value.get("values"):
            return str(value["values"][0])
        if "choice_names" in value:
            return ", ".join(str(v) for v in value["choice_names"])
    return ""


def field_checked(task: dict[str, Any], code: str) -> bool:
    item = field_by_code(task, code)
    return item is not None and item.get("value") == "checked"


@dataclass(frozen=True)
class TicketFields:
    """Which form fields hold what (by field code), from settings."""

    subject: str = "u_subject"
    description: tuple[str, ...] = ("u_description",)
    category: str = "u_category"
    solution_confirmed: str = "u_solution_confirmed"


@dataclass(frozen=True)
class CorrectionFields:
    question: str = "u_question"
    bot_answer: str = "u_bot_answer"
    corrected_answer: str = "u_corrected_answer"
    ticket: str = "u_ticket"
    supersedes: str = "u_supersedes"
    decision: str = "u_decision"
    approved_value: str = "Одобрено"


@dataclass
class TicketDocumentBuilder:
    """Turns a resolved ticket into a question-and-resolution knowledge document."""

    fields: TicketFields = field(default_factory=TicketFields)
    bot_ids: frozenset[int] = frozenset()
    task_url: str = "https://pyrus.com/t#id{id}"

    def resolution(self, task: dict[str, Any]) -> list[Comment]:
        """The agents' replies to the customer, as finally edited.

        A reply is a comment sent through a customer channel by someone other than the
        customer (the task author) and not by a bot; internal notes (no channel), bot
        drafts and the customer's own messages are not part of the resolution.
        """
        customer = (task.get("author") or {}).get("id")
        return [
            c
            for c in comment_history(task)
            if c.channel and c.text and not c.is_bot(self.bot_ids) and c.author_id != customer
        ]

    def document(self, task: dict[str, Any]) -> SourceDocument | None:
        """None for tickets that are open or have no reply to learn from."""
        if not task.get("is_closed"):
            return None
        replies = self.resolution(task)
        if not replies:
            return None
        subject = field_text(task, self.fields.subject) or str(task.get("subject") or "")
        subject = subject or f"Заявка {task['id']}"
        question = "\n\n".join(
            text for code in self.fields.description if (text := field_text(task, code))
        )
        body = [f"# {subject}", "", "## Вопрос", "", question or subject, "", "## Решение", ""]
        body.append("\n\n".join(reply.text for reply in replies))
        return SourceDocument(
            source=TICKETS_SOURCE,
            external_id=str(task["id"]),
            title=subject,
            raw_format="markdown",
            raw_body="\n".join(body) + "\n",
            url=self.task_url.format(id=task["id"]),
            updated_at=parse_time(task.get("close_date") or task.get("last_modified_date")),
            metadata={
                "form_id": task.get("form_id"),
                "category": field_text(task, self.fields.category) or None,
                "created_at": task.get("create_date"),
                "closed_at": task.get("close_date"),
                "solution_confirmed": field_checked(task, self.fields.solution_confirmed),
                "replies": len(replies),
            },
        )


@dataclass
class CorrectionDocumentBuilder:
    """Turns an approved "Актуализация RAG" task into a curated knowledge entry."""

    fields: CorrectionFields = field(default_factory=CorrectionFields)
    task_url: str = "https://pyrus.com/t#id{id}"

    def approved(self, task: dict[str, Any]) -> bool:
        decision = field_text(task, self.fields.decision)
        return decision == self.fields.approved_value

    def document(self, task: dict[str, Any]) -> SourceDocument | None:
        if not self.approved(task):
            return None
        question = field_text(task, self.fields.question)
        answer = field_text(task, self.fields.corrected_answer)
        if not question or not answer:
            return None
        ticket = field_by_code(task, self.fields.ticket)
        ticket_ids = ((ticket or {}).get("value") or {}).get("task_ids") or []
        # A question filed from a ticket is its subject, then its description: the first
        # line is the entry's title. The description stays out of the body, so that the
        # entry's text is the answer (extractive mode quotes the body's best sentences).
        title = question.strip().partition("\n")[0].strip()
        return SourceDocument(
            source=CORRECTIONS_SOURCE,
            external_id=str(task["id"]),
            title=title,
            raw_format="markdown",
            raw_body=f"# {title}\n\n{answer}\n",
            url=self.task_url.format(id=task["id"]),
            updated_at=parse_time(task.get("close_date") or task.get("last_modified_date")),
            metadata={
                "supersedes": field_text(task, self.fields.supersedes) or None,
                "ticket_ids": [int(t) for t in ticket_ids],
                "approved_at": task.get("close_date") or task.get("last_modified_date"),
            },
        )
