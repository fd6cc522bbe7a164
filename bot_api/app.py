"""FastAPI application: lifespan-managed database pool, routers, error mapping.

Routes stay thin: they declare what they need (``bot_api.deps``), validate input
(``bot_api.schemas``) and call kb_core; kb_core's errors become HTTP statuses in one
place (``bot_api.errors``). The process owns the embedded PostgreSQL when DATABASE_URL is
unset, so the server lives exactly as long as the app. ``create_app`` is the only place
in bot_api that reads the process settings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from bot_api import errors, log_privacy, observability
from bot_api.routes import admin, corrections, events, feedback, ops, page, search, synonyms
from bot_api.routes import webhook as pyrus_webhook
from bot_api.state import AppState, ConsoleServices, Identity
from kb_core.bot.worker import WorkerHealth
from kb_core.db import open_database
from kb_core.embeddings import query_embedder
from kb_core.settings import Settings, get_settings

ROUTERS = (
    pyrus_webhook.router,
    search.router,
    feedback.router,
    page.router,
    admin.router,
    corrections.router,
    synonyms.router,
    events.router,
    ops.router,
)


def create_app(
    settings: Settings | None = None, *, worker_health: WorkerHealth | None = None
) -> FastAPI:
    """The API; ``worker_health`` (``kb serve`` with its in-process worker) makes /readyz
    also answer for the worker threads."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        resolved = settings or get_settings()
        database = open_database(resolved)
        pool = database.pool()
        app.state.kb = AppState(
            settings=resolved,
            database=database,
            pool=pool,
            embedder=query_embedder(resolved),
            console=ConsoleServices(resolved),
            identity=Identity(resolved),
            worker_health=worker_health,
        )
        try:
            yield
        finally:
            pool.close()

    log_privacy.install()
    app = FastAPI(title="Pyrus KB assistant", version="0.1.0", lifespan=lifespan)
    for router in ROUTERS:
        app.include_router(router)
    errors.install(app)
    observability.install(app, lambda: app.state.kb)
    return app
