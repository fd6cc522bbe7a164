"""Domain errors as HTTP, in one place.

Routes let kb_core's errors propagate; :func:`install` maps each class to its status
once, and :func:`status_for` gives the same status to the audit log (``bot_api.audit``)
and the page (which shows a message instead). Specific classes first, then
``KbError``: a domain failure the table does not name still answers with its message.
"""

from __future__ import annotations

import logging

import psycopg
from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from psycopg_pool import PoolTimeout

from kb_core.bot.webhook import WebhookError
from kb_core.console.approval import NotACorrection
from kb_core.db import DatabaseError
from kb_core.errors import KbError
from kb_core.index.versions import NoActiveVersion
from kb_core.search.hybrid import ModelMismatch
from kb_core.sources.events import EventError
from kb_core.sources.http import SourceHTTPError

log = logging.getLogger(__name__)

# Exact classes (and their subclasses), most specific first.
STATUS: tuple[tuple[type[Exception], int], ...] = (
    # No promoted index yet, or the query model differs from the index's: not ready.
    (NoActiveVersion, 503),
    (ModelMismatch, 503),
    (NotACorrection, 404),
    (EventError, 400),
    (WebhookError, 400),
    # The database down or restarting is a fast, explicit 503 on every route (the pool
    # waits at most KB_DB_POOL_TIMEOUT_S), not a 500 after half a minute. Pyrus retries
    # a webhook that did not get 200, so nothing is lost.
    (PoolTimeout, 503),
    (psycopg.OperationalError, 503),
    (DatabaseError, 503),
    (KbError, 500),
)
UNAVAILABLE = (PoolTimeout, psycopg.OperationalError, DatabaseError)


def status_for(exc: BaseException) -> int | None:
    """The HTTP status of an error, or None when it is a bug (an unmapped exception)."""
    if isinstance(exc, HTTPException):
        return exc.status_code
    if isinstance(exc, SourceHTTPError):
        # The source's own "not found" is the caller's; anything else the source's fault.
        return 404 if exc.status == 404 else 502
    # ``get_version`` refuses an index version that does not exist with a bare
    # LookupError; its subclasses (KeyError, IndexError) are bugs, not requests to refuse.
    if type(exc) is LookupError:
        return 404
    for kind, status in STATUS:
        if isinstance(exc, kind):
            return status
    return None


def _detail(exc: BaseException) -> str:
    if isinstance(exc, UNAVAILABLE):
        return f"database unavailable ({type(exc).__name__}); retry later"
    if isinstance(exc, SourceHTTPError):
        return f"source system: {exc}"
    return str(exc)


async def domain_error(request: Request, exc: Exception) -> JSONResponse:
    status = status_for(exc)
    if status is None:
        # A LookupError subclass (KeyError, …) reached the LookupError handler: a bug,
        # answered as every unhandled error is (a bare 500, nothing of it shown).
        raise exc
    headers = {"Retry-After": "5"} if isinstance(exc, UNAVAILABLE) else None
    return JSONResponse({"detail": _detail(exc)}, status_code=status, headers=headers)


def install(app: FastAPI) -> None:
    """Register the handlers: every mapped class, and refusals (401/403) audited."""
    from bot_api.audit import record_refusal
    from bot_api.auth import Refused
    from bot_api.deps import state_of
    from bot_api.observability import route_template

    for kind in {k for k, _ in STATUS} | {SourceHTTPError, LookupError}:
        app.add_exception_handler(kind, domain_error)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        await run_in_threadpool(
            record_refusal,
            state_of(request),
            exc.principal,
            exc.status_code,
            route_template(request),
            request.method,
        )
        return await http_exception_handler(request, exc)

    app.add_exception_handler(Refused, refused)
