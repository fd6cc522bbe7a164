"""Incremental fetch of resolved tickets and approved corrections from Pyrus.

Tickets: the form register (no comments) tells which tasks changed since the cursor
minus an overlap; each closed one is fetched whole (comments included) and turned into a
document. An id listing of closed tasks, when due, lets the sync drop tickets that were
deleted or reopened. Corrections: the form is small, so every run reads it whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from kb_core.models import SourceDocument
from kb_core.sources.cursor import SyncCursor, parse_time
from kb_core.sources.pyrus import PyrusClient
from kb_core.sources.pyrus_attachments import ticket_attachment_refs
from kb_core.sources.pyrus_tasks import (
    CORRECTIONS_SOURCE,
    CorrectionDocumentBuilder,
    TicketDocumentBuilder,
)

REGISTER_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass
class TicketFetch:
    mode: str
    documents: list[SourceDocument] = field(default_factory=list)
    live_ids: set[str] | None = None
    cursor: SyncCursor = field(default_factory=SyncCursor)
    tasks_seen: int = 0
    skipped_open: int = 0
    # ticket id -> the files worth indexing (kb_core.sources.pyrus_attachments), for the
    # tickets that became documents: kept as references so the tasks need not be.
    attachments: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def _newest(tasks: Iterable[dict[str, Any]], current: datetime | None) -> datetime | None:
    times = [t for task in tasks if (t := parse_time(task.get("last_modified_date")))]
    if current is not None:
        times.append(current)
    return max(times, default=None)


def fetch_tickets(
    client: PyrusClient,
    form_ids: list[int],
    builder: TicketDocumentBuilder,
    cursor: SyncCursor,
    *,
    now: datetime,
    overlap: timedelta = timedelta(hours=1),
    listing_interval: timedelta = timedelta(hours=0),
) -> TicketFetch:
    full = cursor.last_modified is None
    since = None
    if cursor.last_modified is not None:
        since = (cursor.last_modified - overlap).strftime(REGISTER_TIME_FORMAT)
    listed = [t for form in form_ids for t in client.iter_register(form, modified_after=since)]
    result = TicketFetch(mode="full" if full else "incremental", tasks_seen=len(listed))
    for summary in listed:
        if not summary.get("is_closed"):
            result.skipped_open += 1
            continue
        task = client.get_task(int(summary["id"]))
        document = builder.document(task)
        if document is not None:
            result.documents.append(document)
            refs = ticket_attachment_refs(task, builder.bot_ids)
            if refs:
                result.attachments[document.external_id] = refs
    listing_due = full or cursor.listing_due(now, listing_interval)
    if full:
        result.live_ids = {d.external_id for d in result.documents}
    elif listing_due:
        result.live_ids = {
            str(t["id"])
            for form in form_ids
            for t in client.iter_register(form)
            if t.get("is_closed")
        }
    result.cursor = SyncCursor(
        last_modified=_newest(listed, cursor.last_modified),
        last_full_listing=now if listing_due else cursor.last_full_listing,
    )
    return result


def fetch_corrections(
    client: PyrusClient, form_id: int, builder: CorrectionDocumentBuilder
) -> list[SourceDocument]:
    """Every approved correction (a complete listing: the rest are gone)."""
    documents = []
    for task in client.iter_register(form_id):
        document = builder.document(task)
        if document is not None:
            documents.append(document)
    return documents


def corrections_pending(
    conn: Any, client: PyrusClient, form_id: int, builder: CorrectionDocumentBuilder
) -> dict[str, str]:
    """Approved corrections the knowledge base does not hold as they are now: new or
    changed (id → the content hash Pyrus has now) and withdrawn (id → "withdrawn": indexed
    but no longer approved). Empty: nothing to ingest.

    The comparison is by content hash against ``documents``, so it needs no state of its
    own: a sensor polling this triggers one refresh per change, however often it asks.
    """
    wanted = {d.external_id: d.content_hash for d in fetch_corrections(client, form_id, builder)}
    rows = conn.execute(
        "SELECT external_id, content_hash FROM documents WHERE source = %s AND deleted_at IS NULL",
        (CORRECTIONS_SOURCE,),
    ).fetchall()
    held = {str(external_id): str(digest) for external_id, digest in rows}
    pending = {i: digest for i, digest in wanted.items() if held.get(i) != digest}
    pending.update({i: "withdrawn" for i in held if i not in wanted})
    return dict(sorted(pending.items()))
