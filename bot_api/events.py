"""``POST /events/confluence`` and ``POST /events/pyrus``: signed source events.

An accepted event is a committed row of ``source_events`` before the answer; the events
sensor turns pending rows into a refresh of just those documents. Order as for the bot's
webhook: size (413), signature on the raw bytes (401, nothing stored), JSON (400 with
the reason). Event bodies are not logged.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from bot_api.webhook import State, _read_limited
from kb_core.bot.webhook import valid_signature
from kb_core.sources.events import (
    EventError,
    SourceEvent,
    confluence_event,
    pyrus_event,
    record_event,
    valid_hub_signature,
)

log = logging.getLogger(__name__)
router = APIRouter()


async def _store(kb: Any, event: SourceEvent | None) -> dict[str, Any]:
    if event is None:
        return {"queued": False}

    def store() -> int:
        with kb.pool.connection() as conn:
            return record_event(conn, event)

    event_id = await run_in_threadpool(store)
    log.info("source event %s: %s %s %s", event_id, event.source, event.kind, event.external_id)
    return {"queued": True, "id": event_id}


@router.post("/events/confluence", tags=["events"])
async def confluence_webhook(request: Request, kb: State) -> dict[str, Any]:
    """Confluence webhook (page created/updated/removed, attachment created, …)."""
    settings = kb.settings
    body = await _read_limited(request, settings.bot_webhook_max_bytes)
    secret = settings.events_webhook_key.get_secret_value() if settings.events_webhook_key else ""
    if not valid_hub_signature(body, request.headers.get("X-Hub-Signature"), secret):
        raise HTTPException(
            401, detail="invalid or missing X-Hub-Signature (KB_EVENTS_WEBHOOK_KEY)"
        )
    try:
        event = confluence_event(body)
    except EventError as exc:
        raise HTTPException(400, detail=str(exc)) from exc
    return await _store(kb, event)


@router.post("/events/pyrus", tags=["events"])
async def pyrus_webhook(request: Request, kb: State) -> dict[str, Any]:
    """Pyrus webhook of a helpdesk form: a closed ticket is indexed within minutes."""
    settings = kb.settings
    body = await _read_limited(request, settings.bot_webhook_max_bytes)
    key = settings.pyrus_security_key.get_secret_value() if settings.pyrus_security_key else ""
    if not valid_signature(body, request.headers.get("X-Pyrus-Sig"), key):
        raise HTTPException(401, detail="invalid or missing X-Pyrus-Sig signature")
    try:
        event = pyrus_event(body)
    except EventError as exc:
        raise HTTPException(400, detail=str(exc)) from exc
    return await _store(kb, event)
