"""Attachments of Confluence pages as documents of their own, tied to their parent.

An attachment of a configured type and size becomes a Markdown document titled with its
parent's title and the file name and linked to the parent page, so a hit reads as "the
price list attached to page X". It is versioned by the attachment's own version (an
unchanged version is not downloaded again) and deleted with its parent: when the page
is gone, or when the page no longer lists it. Images, archives and binaries are skipped
and counted; a broken or encrypted file becomes a per-file error in the result (named
by attachment id and extension, never by file name, which may hold a person's name)
and the rest of the sync goes on.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg

from kb_core.models import SourceDocument
from kb_core.sources.confluence import ConfluenceAttachment, ConfluenceClient, ConfluencePage
from kb_core.sources.http import SourceHTTPError
from kb_core.text.attachments import AttachmentError, attachment_markdown, extension, kind

SOURCE_NAME = "confluence_attachment"


@dataclass(frozen=True)
class AttachmentRules:
    types: frozenset[str] = frozenset(
        {"pdf", "docx", "xlsx", "pptx", "txt", "log", "csv", "md", "html"}
    )
    max_bytes: int = 20_000_000
    max_chars: int = 200_000


@dataclass(frozen=True)
class KnownAttachment:
    """An attachment already indexed: its parent page and version."""

    page_id: str
    version: int


@dataclass
class AttachmentFetch:
    documents: list[SourceDocument] = field(default_factory=list)
    live_ids: set[str] = field(default_factory=set)
    skipped: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    downloaded: int = 0
    downloaded_bytes: int = 0
    seconds: float = 0.0

    @property
    def per_second(self) -> float:
        return self.downloaded / self.seconds if self.seconds > 0 else 0.0


def known_attachments(conn: psycopg.Connection[Any]) -> dict[str, KnownAttachment]:
    """The live indexed attachments with their parent page and version."""
    rows = conn.execute(
        """
        SELECT external_id, metadata->>'page_id', (metadata->>'version')::int
        FROM documents WHERE source = %s AND deleted_at IS NULL
        """,
        (SOURCE_NAME,),
    ).fetchall()
    return {str(r[0]): KnownAttachment(str(r[1]), int(r[2] or 0)) for r in rows}


def attached_file_document(
    source: str,
    external_id: str,
    parent: SourceDocument | ConfluencePage,
    filename: str,
    markdown: str,
    metadata: Mapping[str, Any],
) -> SourceDocument:
    """A file attached to a page or a ticket as a document of its own, for every source
    with attachments: titled "<parent> — <file>" (what search shows and what the title
    boost matches), under the parent's link and date."""
    title = f"{parent.title} — {filename}"
    updated = parent.updated_at if isinstance(parent, SourceDocument) else parent.last_modified
    return SourceDocument(
        source=source,
        external_id=external_id,
        title=title,
        raw_format="markdown",
        raw_body=f"# {title}\n\n{markdown}",
        url=parent.url,
        updated_at=updated,
        metadata={**metadata, "parent_title": parent.title, "filename": filename},
    )


def attachment_document(
    page: ConfluencePage, attachment: ConfluenceAttachment, markdown: str
) -> SourceDocument:
    return attached_file_document(
        SOURCE_NAME,
        attachment.id,
        page,
        attachment.filename,
        markdown,
        {
            "space": page.space,
            "page_id": page.id,
            "media_type": attachment.media_type,
            "size": attachment.size,
            "version": attachment.version,
        },
    )


def fetch_attachments(
    client: ConfluenceClient,
    pages: list[ConfluencePage],
    known: Mapping[str, KnownAttachment],
    live_page_ids: Collection[str] | None,
    rules: AttachmentRules,
) -> AttachmentFetch:
    """Attachments of ``pages`` (the ones a page sync just fetched) to (re)write, and
    the ids of every attachment that stays alive.

    Attachments of pages not fetched this time stay as they are unless their page is
    gone (``live_page_ids`` says so when the sync listed ids).
    """
    started = time.perf_counter()
    result = AttachmentFetch()
    fetched = {page.id for page in pages}
    for attachment_id, item in known.items():
        parent_alive = live_page_ids is None or item.page_id in live_page_ids
        if item.page_id not in fetched and parent_alive:
            result.live_ids.add(attachment_id)
    for page in pages:
        for attachment in client.iter_attachments(page.id):
            ext = extension(attachment.filename)
            category = kind(attachment.filename)
            if category != "document":
                result.skipped[category] += 1
                continue
            if ext not in rules.types:
                result.skipped["type_not_configured"] += 1
                continue
            if attachment.size > rules.max_bytes:
                result.skipped["too_large"] += 1
                continue
            previous = known.get(attachment.id)
            if previous is not None and previous.version == attachment.version:
                result.live_ids.add(attachment.id)  # unchanged: not downloaded again
                continue
            where = f"page {page.id}, attachment {attachment.id} (.{ext})"
            try:
                data = client.download(attachment)
                result.downloaded += 1
                result.downloaded_bytes += len(data)
                markdown = attachment_markdown(attachment.filename, data, rules.max_chars)
            except (AttachmentError, SourceHTTPError) as exc:
                result.errors.append(f"{where}: {exc}")
                if previous is not None:
                    result.live_ids.add(attachment.id)  # keep the last good version
                continue
            if markdown is None:  # kind() said document; a converter may still decline
                result.skipped["binary"] += 1
                continue
            result.documents.append(attachment_document(page, attachment, markdown))
            result.live_ids.add(attachment.id)
    result.seconds = time.perf_counter() - started
    return result
