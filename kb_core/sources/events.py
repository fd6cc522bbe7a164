"""Source events: minutes-fresh updates between the nightly syncs.

Confluence webhooks (page created / updated / removed, attachment created) and the
Pyrus "ticket closed" event arrive on signed endpoints and are stored in
``source_events`` before they are acknowledged. A Dagster sensor sees pending events and
starts a run whose first step, :func:`apply_events`, refreshes exactly the documents the
events name (a page with its comments and attachments, a removed page with its
attachments, a closed ticket), marks the events processed in the same transaction, and
leaves scrubbing, embedding, evaluation and promotion to the usual downstream steps. The
nightly sync stays the safety net for anything an event missed.

Signatures: Confluence sends ``X-Hub-Signature: sha256=<hex>`` (HMAC-SHA256 of the raw
body with the webhook's secret, ``KB_EVENTS_WEBHOOK_KEY``); Pyrus signs with the bot's
security key (``X-Pyrus-Sig``, HMAC-SHA1), as for the bot's own webhook.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg

from kb_core.errors import KbError
from kb_core.index.access import sync_access
from kb_core.index.documents import Preparer, mark_deleted_except, sync_source
from kb_core.sources.attachments import SOURCE_NAME as ATTACHMENT_SOURCE
from kb_core.sources.attachments import AttachmentRules, fetch_attachments, known_attachments
from kb_core.sources.confluence import SOURCE_NAME as CONFLUENCE_SOURCE
from kb_core.sources.confluence import ConfluenceClient, effective_access
from kb_core.sources.http import SourceHTTPError
from kb_core.sources.pyrus import PyrusClient
from kb_core.sources.pyrus_tasks import TICKETS_SOURCE, TicketDocumentBuilder

log = logging.getLogger(__name__)

CONFLUENCE_KINDS = {
    "page_created": "page_updated",
    "page_updated": "page_updated",
    "page_restored": "page_updated",
    "page_moved": "page_updated",
    "comment_created": "page_updated",
    "comment_updated": "page_updated",
    "page_removed": "page_removed",
    "page_trashed": "page_removed",
    "attachment_created": "page_updated",
    "attachment_updated": "page_updated",
    "attachment_removed": "page_updated",
}
MAX_ATTEMPTS = 5  # an event failing this often is left for the nightly sync


class EventError(KbError, ValueError):
    """A webhook body that is not a usable event (the reason is for the 400 answer)."""


@dataclass(frozen=True)
class SourceEvent:
    source: str
    kind: str
    external_id: str


def valid_hub_signature(body: bytes, header: str | None, secret: str) -> bool:
    """Constant-time check of ``X-Hub-Signature: sha256=<hex>`` against the raw body."""
    if not header or not secret:
        return False
    algorithm, _, digest = header.strip().partition("=")
    if algorithm.lower() != "sha256" or not digest:
        return False
    expected = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, digest.lower())


def _json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise EventError(f"body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise EventError("body must be a JSON object")
    return data


def confluence_event(body: bytes) -> SourceEvent | None:
    """The event a Confluence webhook carries; None for events we do not follow.

    Data Center sends ``event``, Cloud ``webhookEvent``; the page is ``page.id``, an
    attachment's page is ``attachment.container.id``, a comment's ``comment.parent.id``
    (or ``comment.container.id``).
    """
    data = _json(body)
    name = str(data.get("event") or data.get("webhookEvent") or "")
    if not name:
        raise EventError("no 'event' (or 'webhookEvent') in the body")
    kind = CONFLUENCE_KINDS.get(name)
    if kind is None:
        return None
    candidates = [
        (data.get("page") or {}).get("id"),
        ((data.get("attachment") or {}).get("container") or {}).get("id"),
        ((data.get("comment") or {}).get("parent") or {}).get("id"),
        ((data.get("comment") or {}).get("container") or {}).get("id"),
    ]
    page_id = next((str(c) for c in candidates if c not in (None, "")), None)
    if page_id is None or not page_id.isdigit():
        raise EventError(f"{name}: no numeric page id in the body")
    return SourceEvent(CONFLUENCE_SOURCE, kind, page_id)


def pyrus_event(body: bytes) -> SourceEvent | None:
    """A "ticket closed" event from a Pyrus webhook body; None when the task is open."""
    data = _json(body)
    task = data.get("task")
    if not isinstance(task, dict) or not str(task.get("id", "")).isdigit():
        raise EventError("no 'task' with a numeric 'id' in the body")
    if not task.get("is_closed") and not task.get("close_date"):
        return None
    return SourceEvent(TICKETS_SOURCE, "ticket_closed", str(task["id"]))


def record_event(conn: psycopg.Connection[Any], event: SourceEvent) -> int:
    row = conn.execute(
        "INSERT INTO source_events (source, kind, external_id) VALUES (%s, %s, %s) RETURNING id",
        (event.source, event.kind, event.external_id),
    ).fetchone()
    assert row is not None
    return int(row[0])


def pending_events(
    conn: psycopg.Connection[Any], limit: int = 500
) -> list[tuple[int, SourceEvent]]:
    rows = conn.execute(
        """
        SELECT id, source, kind, external_id FROM source_events
        WHERE processed_at IS NULL AND attempts < %s ORDER BY id LIMIT %s
        """,
        (MAX_ATTEMPTS, limit),
    ).fetchall()
    return [(int(r[0]), SourceEvent(str(r[1]), str(r[2]), str(r[3]))) for r in rows]


@dataclass
class EventResult:
    events: int = 0
    pages_written: int = 0
    pages_removed: int = 0
    tickets_written: int = 0
    attachments_written: int = 0
    errors: list[str] = field(default_factory=list)


def _latest_per_item(events: list[tuple[int, SourceEvent]]) -> dict[tuple[str, str], str]:
    """One action per document: the last event about it wins (created then removed →
    removed)."""
    latest: dict[tuple[str, str], str] = {}
    for _, event in events:
        latest[(event.source, event.external_id)] = event.kind
    return latest


def apply_events(
    conn: psycopg.Connection[Any],
    events: list[tuple[int, SourceEvent]],
    *,
    confluence: ConfluenceClient | None,
    spaces: list[str],
    comments: bool,
    attachments: AttachmentRules | None,
    pyrus: PyrusClient | None,
    tickets: TicketDocumentBuilder | None,
    prepare: Preparer,
    space_groups: Mapping[str, frozenset[str]] | None = None,
) -> EventResult:
    """Refresh the documents ``events`` name; mark the events processed.

    A page outside the configured spaces is ignored (the webhook may cover the whole
    site). A failing fetch leaves its events pending (attempts counted) for the next
    sensor tick, and after :data:`MAX_ATTEMPTS` for the nightly sync.

    ``prepare`` converts and scrubs every document before it is stored (the raw text
    never reaches the database); a page's read access (and its attachments') is set
    from its restrictions and ``space_groups`` in the same transaction.
    """
    result = EventResult(events=len(events))
    failed: set[tuple[str, str]] = set()
    for (source, item), kind in _latest_per_item(events).items():
        try:
            with conn.transaction():
                if source == CONFLUENCE_SOURCE and confluence is not None:
                    _apply_page(
                        conn,
                        confluence,
                        item,
                        kind,
                        _PageRefresh(spaces, comments, attachments, prepare, space_groups or {}),
                        result,
                    )
                elif source == TICKETS_SOURCE and pyrus is not None and tickets is not None:
                    document = tickets.document(pyrus.get_task(int(item)))
                    if document is not None:
                        sync_source(
                            conn, TICKETS_SOURCE, [document], full_listing=False, prepare=prepare
                        )
                        result.tickets_written += 1
        except (SourceHTTPError, ValueError) as exc:
            failed.add((source, item))
            result.errors.append(f"{source} {item}: {exc}")
    done = [i for i, e in events if (e.source, e.external_id) not in failed]
    retry = [i for i, e in events if (e.source, e.external_id) in failed]
    with conn.transaction():
        if done:
            conn.execute(
                "UPDATE source_events SET processed_at = now(), attempts = attempts + 1 "
                "WHERE id = ANY(%s)",
                (done,),
            )
        if retry:
            conn.execute(
                "UPDATE source_events SET attempts = attempts + 1, error = %s WHERE id = ANY(%s)",
                ("; ".join(result.errors)[:1000], retry),
            )
    return result


@dataclass(frozen=True)
class _PageRefresh:
    """How a page named by an event is refreshed."""

    spaces: list[str]
    comments: bool
    rules: AttachmentRules | None
    prepare: Preparer
    space_groups: Mapping[str, frozenset[str]]


def _apply_page(
    conn: psycopg.Connection[Any],
    client: ConfluenceClient,
    page_id: str,
    kind: str,
    how: _PageRefresh,
    result: EventResult,
) -> None:
    comments, rules, prepare = how.comments, how.rules, how.prepare
    page = client.get_page(page_id) if kind != "page_removed" else None
    if page is None or page.space not in how.spaces:
        removed = _remove_page(conn, page_id)
        result.pages_removed += removed
        return
    if comments:
        page = client.with_comments(page)
    sync_source(conn, CONFLUENCE_SOURCE, [page.as_document()], full_listing=False, prepare=prepare)
    access = effective_access([page], how.space_groups, client.read_restriction)
    sync_access(conn, CONFLUENCE_SOURCE, access, origin="confluence")
    result.pages_written += 1
    if rules is not None:
        known = {k: v for k, v in known_attachments(conn).items() if v.page_id == page_id}
        fetched = fetch_attachments(client, [page], known, None, rules)
        keep = set(fetched.live_ids)
        others = [k for k, v in known_attachments(conn).items() if v.page_id != page_id]
        sync_source(
            conn,
            ATTACHMENT_SOURCE,
            fetched.documents,
            full_listing=False,
            live_ids=keep | set(others),
            prepare=prepare,
        )
        sync_access(
            conn,
            ATTACHMENT_SOURCE,
            {doc.external_id: access[page.id] for doc in fetched.documents},
            origin="confluence",
        )
        result.attachments_written += len(fetched.documents)
        result.errors += fetched.errors


def _remove_page(conn: psycopg.Connection[Any], page_id: str) -> int:
    """Soft-delete a page and its attachments (retired at the next promotion)."""
    live = conn.execute(
        "SELECT count(*) FROM documents WHERE source = %s AND external_id = %s "
        "AND deleted_at IS NULL",
        (CONFLUENCE_SOURCE, page_id),
    ).fetchone()
    others = [
        str(r[0])
        for r in conn.execute(
            "SELECT external_id FROM documents WHERE source = %s AND deleted_at IS NULL "
            "AND external_id <> %s",
            (CONFLUENCE_SOURCE, page_id),
        )
    ]
    mark_deleted_except(conn, CONFLUENCE_SOURCE, others)
    attachments = [k for k, v in known_attachments(conn).items() if v.page_id != page_id]
    mark_deleted_except(conn, ATTACHMENT_SOURCE, attachments)
    return int(live[0]) if live else 0
