"""The whole ticket as text, and the part of it the bot reads within a budget.

What a ticket says is spread over its subject and description, its other form fields,
its attachments and its conversation. :func:`read_ticket` renders all of it: every
form field by its type (a person becomes a placeholder, never a name), attachment names
and the text of readable attachments (``kb_core.text.attachments``), and every comment
except bots' with edits and deletions applied.

A long thread does not fit a prompt, and cutting it at the end loses exactly the newest
question. :func:`select` keeps what matters: the subject, the description, the fields,
the attachments (each within its share), the comment that called the bot and the latest
comments verbatim; the middle of the thread goes, replaced by a visible marker. The same
selection gives the search query (:func:`search_query`), the newest question first,
so search and the LLM read the same ticket. The caller scrubs both results.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Protocol

from kb_core.pii.scrubber import placeholder
from kb_core.settings import BotSettings, defaults_of
from kb_core.sources.pyrus_tasks import Comment, TicketFields, comment_history, field_text
from kb_core.text.attachments import extract_text

_BOT = defaults_of(BotSettings)

log = logging.getLogger(__name__)

PERSON = placeholder("PERSON")
# Workflow state, not content: nothing a customer wrote.
SKIPPED_TYPES = frozenset({"step", "status", "creation_date"})
# Files no text extractor reads: not worth downloading.
MEDIA_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".heic", ".tif", ".tiff", ".svg"}
    | {".mp3", ".mp4", ".mov", ".avi", ".wav", ".ogg", ".zip", ".rar", ".7z", ".exe"}
)
TRIM_MARKER = "[… {n} comment(s) in the middle of the thread omitted …]"
CUT_MARK = "…"


class FileSource(Protocol):
    def download_file(self, file_id: int, *, max_bytes: int) -> bytes | None: ...


@dataclass(frozen=True)
class AttachmentPolicy:
    """How much of the attachments is read (0 bytes: names only)."""

    max_bytes: int = _BOT["attachment_max_bytes"]  # defaults of KB_BOT_ATTACHMENT_*
    max_chars: int = _BOT["attachment_max_chars"]
    max_files: int = 10


@dataclass(frozen=True)
class Attachment:
    name: str
    text: str | None  # None: not read (format, size, or an error)


@dataclass(frozen=True)
class TicketText:
    subject: str
    description: str
    fields: tuple[str, ...]  # one "Name: value" line per field (tables: one per row)
    attachments: tuple[Attachment, ...]
    comments: tuple[Comment, ...]  # people's comments, in order
    customer_id: int | None


# -- fields ----------------------------------------------------------------------------------


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "да" if value else "нет"
    if isinstance(value, int | float | str):
        return str(value).strip()
    if isinstance(value, list) and all(isinstance(v, int | float | str) for v in value):
        return ", ".join(str(v).strip() for v in value if str(v).strip())
    return ""


def field_value(item: dict[str, Any]) -> str:
    """One field's value as text, by the field's type ("" when it says nothing)."""
    kind = item.get("type")
    value = item.get("value")
    if value is None or kind in SKIPPED_TYPES:
        return ""
    if kind in ("person", "author"):
        return PERSON
    if kind == "checkmark":
        return "да" if value == "checked" else "нет" if value == "unchecked" else ""
    if kind == "multiple_choice" and isinstance(value, dict):
        return ", ".join(str(v) for v in value.get("choice_names") or [])
    if kind == "catalog" and isinstance(value, dict):
        rows = value.get("rows") or ([value["values"]] if value.get("values") else [])
        return "; ".join(" / ".join(str(v) for v in row if str(v).strip()) for row in rows)
    if kind == "form_link" and isinstance(value, dict):
        return str(value.get("subject") or "")
    if kind == "file":
        return ", ".join(str(f.get("name")) for f in value if isinstance(f, dict))
    if kind == "table" and isinstance(value, list):
        rows = []
        for row in value:
            cells = [
                f"{_name(cell)}: {text}"
                for cell in (row.get("cells") or [] if isinstance(row, dict) else [])
                if (text := field_value(cell))
            ]
            if cells:
                rows.append("; ".join(cells))
        return " | ".join(rows)
    if kind == "title" and isinstance(value, dict):
        return "; ".join(
            f"{_name(inner)}: {text}"
            for inner in value.get("fields") or []
            if (text := field_value(inner))
        )
    return _scalar(value)


def _name(item: dict[str, Any]) -> str:
    return str(item.get("name") or item.get("code") or f"field {item.get('id')}").strip()


def field_lines(task: dict[str, Any], skip_codes: Collection[str] = ()) -> list[str]:
    """Every filled form field as "Name: value" (a table: one line per row; a title: one
    line per nested field, named "Title / Field")."""
    lines: list[str] = []

    def walk(items: Sequence[dict[str, Any]], prefix: str) -> None:
        for item in items:
            if item.get("code") and item["code"] in skip_codes:
                continue
            name = prefix + _name(item)
            value = item.get("value")
            if item.get("type") == "title" and isinstance(value, dict):
                walk(value.get("fields") or [], f"{name} / ")
            elif item.get("type") == "table" and isinstance(value, list):
                for number, row in enumerate(value, 1):
                    text = field_value({"type": "table", "value": [row]})
                    if text:
                        lines.append(f"{name}, {number}: {text}")
            elif item.get("type") != "file" and (text := field_value(item)):
                lines.append(f"{name}: {text}")

    walk(task.get("fields") or [], "")
    return lines


# -- attachments ------------------------------------------------------------------------------


def attachment_refs(task: dict[str, Any], comments: Sequence[Comment]) -> list[dict[str, Any]]:
    """Files of the form's file fields and of the kept comments (each file once)."""
    found: dict[Any, dict[str, Any]] = {}

    def walk(items: Sequence[dict[str, Any]]) -> None:
        for item in items:
            value = item.get("value")
            if item.get("type") == "file" and isinstance(value, list):
                for ref in value:
                    if isinstance(ref, dict) and ref.get("name"):
                        found.setdefault(ref.get("id") or ref["name"], ref)
            elif item.get("type") == "title" and isinstance(value, dict):
                walk(value.get("fields") or [])

    walk(task.get("fields") or [])
    kept = {c.id for c in comments}
    for raw in task.get("comments") or []:
        if raw.get("id") in kept:
            for ref in raw.get("attachments") or []:
                if isinstance(ref, dict) and ref.get("name"):
                    found.setdefault(ref.get("id") or ref["name"], ref)
    return list(found.values())


def read_attachment(
    ref: dict[str, Any], files: FileSource | None, policy: AttachmentPolicy
) -> Attachment:
    name = str(ref["name"])
    size = ref.get("size")
    readable = (
        files is not None
        and isinstance(ref.get("id"), int)
        and policy.max_bytes > 0
        and policy.max_chars > 0
        and PurePath(name.lower()).suffix not in MEDIA_SUFFIXES
        and not (isinstance(size, int) and size > policy.max_bytes)
    )
    if not readable or files is None:
        return Attachment(name, None)
    try:
        data = files.download_file(int(ref["id"]), max_bytes=policy.max_bytes)
    except Exception as exc:  # an unreadable attachment must not cost the answer
        log.warning("attachment %s not downloaded: %s", ref.get("id"), type(exc).__name__)
        return Attachment(name, None)
    text = extract_text(name, data, policy.max_chars) if data else None
    return Attachment(name, text)


# -- the ticket -------------------------------------------------------------------------------


def read_ticket(
    task: dict[str, Any],
    fields: TicketFields,
    bot_ids: Collection[int],
    *,
    files: FileSource | None = None,
    policy: AttachmentPolicy | None = None,
    skip_codes: Collection[str] = (),
) -> TicketText:
    """The whole ticket (see the module docstring); ``skip_codes``: fields the bot itself
    writes or reads as commands (the category, the "wrong answer" checkmark, …)."""
    policy = policy or AttachmentPolicy()
    subject = field_text(task, fields.subject) or str(task.get("subject") or "")
    description = "\n".join(t for code in fields.description if (t := field_text(task, code)))
    people = [c for c in comment_history(task) if not c.is_bot(bot_ids)]
    comments = list(people)
    if not description.strip():
        description = str(task.get("text") or "")
    if not description.strip() and comments:
        description, comments = comments[0].text, comments[1:]
    elif comments and comments[0].text.strip() and comments[0].text.strip() in description:
        # The first comment of a new ticket usually repeats the description.
        comments = comments[1:]
    refs = attachment_refs(task, people)
    attachments = tuple(read_attachment(ref, files, policy) for ref in refs[: policy.max_files])
    return TicketText(
        subject=subject.strip(),
        description=description.strip(),
        fields=tuple(field_lines(task, {fields.subject, *fields.description, *skip_codes})),
        attachments=attachments,
        comments=tuple(c for c in comments if c.text.strip()),
        customer_id=(task.get("author") or {}).get("id"),
    )


# -- the budget -------------------------------------------------------------------------------


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    if limit <= len(CUT_MARK):
        return text[:limit]
    cut = text[: limit - len(CUT_MARK)]
    space = cut.rfind(" ")
    return (cut[:space] if space > limit // 2 else cut).rstrip() + CUT_MARK


def _role(comment: Comment, customer_id: int | None) -> str:
    return "customer" if comment.author_id == customer_id else "agent"


def _attachment_block(attachment: Attachment) -> str:
    if attachment.text:
        return f"Attachment «{attachment.name}»:\n{attachment.text}"
    return f"Attachment «{attachment.name}»"


def select(ticket: TicketText, *, mention_id: int | None, max_chars: int) -> str:
    """The ticket within ``max_chars``: head (subject, description), fields, attachments,
    then the thread with the mention and the newest comments verbatim and the middle
    replaced by a marker."""
    head = "\n".join(p for p in (ticket.subject, _cut(ticket.description, max_chars // 3)) if p)
    blocks = [head]
    if ticket.fields:
        blocks.append(_cut("Fields:\n" + "\n".join(ticket.fields), max_chars // 6))
    if ticket.attachments:
        text = "\n".join(_attachment_block(a) for a in ticket.attachments)
        blocks.append(_cut(text, max_chars // 5))
    used = sum(len(b) + 2 for b in blocks)
    thread = _thread(ticket, mention_id, max(max_chars - used - len("Comments:\n"), 0))
    if thread:
        blocks.append("Comments:\n" + thread)
    return _cut("\n\n".join(b for b in blocks if b), max_chars)


def _thread(ticket: TicketText, mention_id: int | None, budget: int) -> str:
    comments = list(ticket.comments)
    if not comments:
        return ""
    lines = {c.id: f"[{_role(c, ticket.customer_id)}] {c.text.strip()}" for c in comments}
    pinned = mention_id if mention_id in lines else comments[-1].id
    # The comment that called the bot is kept whatever it costs (cut only if it alone
    # is over the budget); then the newest comments, as many as fit.
    marker_room = len(TRIM_MARKER) + 8
    lines[pinned] = _cut(lines[pinned], max(budget - marker_room, 200))
    chosen = {pinned}
    left = budget - len(lines[pinned]) - 1 - marker_room
    for comment in reversed(comments):
        if comment.id in chosen:
            continue
        cost = len(lines[comment.id]) + 1
        if cost > left:
            break
        chosen.add(comment.id)
        left -= cost
    out: list[str] = []
    skipped = 0
    for comment in comments:
        if comment.id in chosen:
            if skipped:
                out.append(TRIM_MARKER.format(n=skipped))
                skipped = 0
            out.append(lines[comment.id])
        else:
            skipped += 1
    if skipped:
        out.append(TRIM_MARKER.format(n=skipped))
    return "\n".join(out)


def search_query(ticket: TicketText, *, mention_id: int | None, max_chars: int) -> str:
    """What search looks for, newest question first: the comment that called the bot and
    the latest people's comments, then the subject, the description, the fields, the
    attachments' text and the rest of the thread, up to ``max_chars``."""
    comments = list(ticket.comments)
    mention = next((c for c in comments if c.id == mention_id), None)
    newest: list[str] = []
    if mention is not None:
        newest.append(mention.text)
        newest += [c.text for c in reversed(comments) if c.id != mention.id][:2]
        older = [c.text for c in reversed(comments) if c.id != mention.id][2:]
    else:
        older = [c.text for c in comments]
    parts = [
        *newest,
        ticket.subject,
        ticket.description,
        *ticket.fields,
        *(a.text for a in ticket.attachments if a.text),
        *older,
    ]
    text = "\n".join(p.strip() for p in parts if p and p.strip())
    return _cut(text, max_chars)
