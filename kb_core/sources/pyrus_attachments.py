"""Attachments of resolved Pyrus tickets as documents of their own, tied to their ticket.

The Pyrus counterpart of kb_core.sources.attachments (Confluence): a file of a configured
type and size, attached to a resolved ticket's form fields or to a comment of a person
(bot drafts are not the ticket's knowledge), becomes a Markdown document titled with the
ticket's subject and the file name and linked to the ticket. It lives exactly as long as
its ticket's document: when the ticket is deleted, reopened or loses its replies, the
ticket document goes and its attachments go with it. A file is downloaded again only
when its content changes (Pyrus gives every file an ``md5``; without one, its size and
version stand in). Images, archives and binaries are skipped and counted; a broken or
encrypted file is a per-file error named by ticket, file id and extension (never by
file name, which may hold a person's name) and the rest of the sync goes on.

Converting and scrubbing are not done here: the documents go through the same
``sync_source`` + Preparer path as every other document.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg

from kb_core.bot.ticket_text import attachment_refs
from kb_core.models import SourceDocument
from kb_core.sources.attachments import AttachmentFetch, AttachmentRules, attached_file_document
from kb_core.sources.http import SourceHTTPError
from kb_core.sources.pyrus_tasks import comment_history
from kb_core.text.attachments import AttachmentError, attachment_markdown, extension, kind

SOURCE_NAME = "pyrus_attachment"


class FileDownloader(Protocol):
    def download_file(self, file_id: int, *, max_bytes: int) -> bytes | None: ...


@dataclass(frozen=True)
class KnownTicketAttachment:
    """An attachment already indexed: its ticket and the content key it was read at."""

    ticket_id: str
    content_key: str


def ticket_attachment_refs(task: dict[str, Any], bot_ids: Collection[int]) -> list[dict[str, Any]]:
    """The files of a ticket worth indexing: its form's file fields and the attachments
    of comments by people, as the comment history stands (deleted comments are gone)."""
    people = [c for c in comment_history(task) if not c.is_bot(bot_ids)]
    return attachment_refs(task, people)


def content_key(ref: Mapping[str, Any]) -> str:
    """What changes when the file's content does."""
    if ref.get("md5"):
        return f"md5:{str(ref['md5']).lower()}"
    return f"v{ref.get('version') or 0}:{ref.get('size') or 0}"


def known_ticket_attachments(conn: psycopg.Connection[Any]) -> dict[str, KnownTicketAttachment]:
    """The live indexed ticket attachments with their ticket and content key."""
    rows = conn.execute(
        """
        SELECT external_id, metadata->>'ticket_id', metadata->>'content_key'
        FROM documents WHERE source = %s AND deleted_at IS NULL
        """,
        (SOURCE_NAME,),
    ).fetchall()
    return {str(r[0]): KnownTicketAttachment(str(r[1]), str(r[2] or "")) for r in rows}


def attachment_document(
    ticket: SourceDocument, ref: Mapping[str, Any], markdown: str
) -> SourceDocument:
    return attached_file_document(
        SOURCE_NAME,
        str(ref["id"]),
        ticket,
        str(ref["name"]),
        markdown,
        {
            "ticket_id": ticket.external_id,
            "form_id": ticket.metadata.get("form_id"),
            "category": ticket.metadata.get("category"),
            "size": ref.get("size"),
            "content_key": content_key(ref),
        },
    )


def fetch_ticket_attachments(
    client: FileDownloader,
    tickets: list[SourceDocument],
    refs: Mapping[str, list[dict[str, Any]]],
    known: Mapping[str, KnownTicketAttachment],
    live_ticket_ids: Collection[str],
    rules: AttachmentRules,
) -> AttachmentFetch:
    """Attachments of ``tickets`` (the ticket documents a sync just wrote, with their
    files in ``refs`` by ticket id) to (re)write, and the ids of every attachment that
    stays alive: those of the tickets just read, and the known ones whose ticket was not
    read this time and is still live (``live_ticket_ids``: after the ticket sync)."""
    started = time.perf_counter()
    result = AttachmentFetch()
    fetched = {ticket.external_id for ticket in tickets}
    for attachment_id, item in known.items():
        if item.ticket_id not in fetched and item.ticket_id in live_ticket_ids:
            result.live_ids.add(attachment_id)
    for ticket in tickets:
        if ticket.external_id not in live_ticket_ids:
            continue  # the ticket itself was not kept (e.g. too many deletions refused)
        for ref in refs.get(ticket.external_id, []):
            _read(client, ticket, ref, known, rules, result)
    result.seconds = time.perf_counter() - started
    return result


def _read(
    client: FileDownloader,
    ticket: SourceDocument,
    ref: Mapping[str, Any],
    known: Mapping[str, KnownTicketAttachment],
    rules: AttachmentRules,
    result: AttachmentFetch,
) -> None:
    filename = str(ref["name"])
    ext = extension(filename)
    category = kind(filename)
    if category != "document":
        result.skipped[category] += 1
        return
    if ext not in rules.types:
        result.skipped["type_not_configured"] += 1
        return
    size = ref.get("size")
    if isinstance(size, int) and size > rules.max_bytes:
        result.skipped["too_large"] += 1
        return
    if not isinstance(ref.get("id"), int):
        # Files are downloaded by their numeric id; an upload token is not one.
        result.skipped["no_file_id"] += 1
        return
    attachment_id = str(ref["id"])
    previous = known.get(attachment_id)
    if previous is not None and previous.content_key == content_key(ref):
        result.live_ids.add(attachment_id)  # unchanged: not downloaded again
        return
    where = f"ticket {ticket.external_id}, file {attachment_id} (.{ext})"
    try:
        data = client.download_file(int(ref["id"]), max_bytes=rules.max_bytes)
        if data is None:
            result.skipped["too_large"] += 1
            return
        result.downloaded += 1
        result.downloaded_bytes += len(data)
        markdown = attachment_markdown(filename, data, rules.max_chars)
    except (AttachmentError, SourceHTTPError) as exc:
        result.errors.append(f"{where}: {exc}")
        if previous is not None:
            result.live_ids.add(attachment_id)  # keep the last good version
        return
    if markdown is None:  # kind() said document; a converter may still decline
        result.skipped["binary"] += 1
        return
    result.documents.append(attachment_document(ticket, ref, markdown))
    result.live_ids.add(attachment_id)
