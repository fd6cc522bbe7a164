"""``POST /events/confluence`` and ``POST /events/pyrus``: signed source events.

An accepted event is a committed row of ``source_events`` before the answer; the events
sensor turns pending rows into a refresh of just those documents. Order as for the bot's
webhook: size (413), signature on the raw bytes (401, nothing stored), JSON (400 with
the reason, by bot_api.errors). Event bodies are not logged.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from psycopg_pool import ConnectionPool

from bot_api.body import read_limited
from bot_api.deps import PoolDep, SettingsDep
from bot_api.schemas import EventQueued
from kb_core.bot.webhook import valid_signature
from kb_core.sources.events import (
    SourceEvent,
    confluence_event,
    pyrus_event,
    record_event,
    valid_hub_signature,
)

log = logging.getLogger(__name__)
# An ignored event answers {"queued": false}: no id rather than a null one.
router = APIRouter(tags=["events"])
OUT: dict[str, Any] = {"response_model": EventQueued, "response_model_exclude_none": True}


async def _store(pool: ConnectionPool[Any], event: SourceEvent | None) -> EventQueued:
    if event is None:
        return EventQueued(queued=False)

    def store() -> int:
        with pool.connection() as conn:
            return record_event(conn, event)

    event_id = await run_in_threadpool(store)
    log.info("source event %s: %s %s %s", event_id, event.source, event.kind, event.external_id)
    return EventQueued(queued=True, id=event_id)


@router.post("/events/confluence", **OUT)
async def confluence_webhook(request: Request, settings: SettingsDep, pool: PoolDep) -> EventQueued:
    """Confluence webhook (page created/updated/removed, attachment created, …)."""
    body = await read_limited(request, settings.bot.webhook_max_bytes)
    secret = settings.events.webhook_key.get_secret_value() if settings.events.webhook_key else ""
    if not valid_hub_signature(body, request.headers.get("X-Hub-Signature"), secret):
        raise HTTPException(
            401, detail="invalid or missing X-Hub-Signature (KB_EVENTS_WEBHOOK_KEY)"
        )
    return await _store(pool, confluence_event(body))


@router.post("/events/pyrus", **OUT)
async def pyrus_webhook(request: Request, settings: SettingsDep, pool: PoolDep) -> EventQueued:
    """Pyrus webhook of a helpdesk form: a closed ticket is indexed within minutes."""
    body = await read_limited(request, settings.bot.webhook_max_bytes)
    key = settings.pyrus.security_key.get_secret_value() if settings.pyrus.security_key else ""
    if not valid_signature(body, request.headers.get("X-Pyrus-Sig"), key):
        raise HTTPException(401, detail="invalid or missing X-Pyrus-Sig signature")
    return await _store(pool, pyrus_event(body))
