"""FastAPI application: lifespan-managed database pool, health checks, the agent console.

Routes stay thin: they validate input and call kb_core. The process owns the embedded
PostgreSQL when DATABASE_URL is unset, so the server lives exactly as long as the app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import psycopg
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from psycopg_pool import ConnectionPool, PoolTimeout

from bot_api import log_privacy, observability
from bot_api.console import ConsoleDeps
from bot_api.console import router as console_router
from bot_api.console_roles import router as console_roles_router
from bot_api.events import router as events_router
from bot_api.webhook import router as webhook_router
from kb_core.bot.worker import WorkerHealth
from kb_core.db import Database, DatabaseError, open_database
from kb_core.embeddings import Embedder, query_embedder
from kb_core.index.versions import NoActiveVersion, active_version
from kb_core.settings import Settings, get_settings


@dataclass
class AppState:
    settings: Settings
    database: Database
    pool: ConnectionPool[Any]
    embedder: Embedder
    console: ConsoleDeps


def get_state(request: Request) -> AppState:
    kb: AppState = request.app.state.kb
    return kb


# Module level on purpose: with postponed annotations FastAPI resolves dependency types
# from module globals, so a dependency defined inside create_app would not be found.
StateDep = Annotated[AppState, Depends(get_state)]


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
        embedder = query_embedder(resolved)
        app.state.kb = AppState(resolved, database, pool, embedder, ConsoleDeps(resolved))
        try:
            yield
        finally:
            pool.close()

    log_privacy.install()
    app = FastAPI(title="Pyrus KB assistant", version="0.1.0", lifespan=lifespan)
    app.include_router(webhook_router)
    app.include_router(console_router)
    app.include_router(console_roles_router)
    app.include_router(events_router)

    # The database down or restarting is a fast, explicit 503 on every route (the pool
    # waits at most KB_DB_POOL_TIMEOUT_S), not a 500 after half a minute. Pyrus retries a
    # webhook that did not get 200, so nothing is lost.
    @app.exception_handler(PoolTimeout)
    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(DatabaseError)
    async def database_unavailable(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            {"detail": f"database unavailable ({type(exc).__name__}); retry later"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    observability.install(app, lambda: app.state.kb)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """Liveness: the process serves requests."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    def readyz(kb: StateDep) -> dict[str, Any]:
        """Readiness: the database answers, an index version has been promoted and, when
        this process runs the worker, its threads live and poll."""
        if worker_health is not None:
            problem = worker_health.problem(kb.settings.bot_worker_stale_s)
            if problem is not None:
                raise HTTPException(503, detail=problem)
        try:
            with kb.pool.connection(timeout=2) as conn:
                version = active_version(conn)
        except NoActiveVersion as exc:
            raise HTTPException(503, detail=str(exc)) from exc
        except Exception as exc:
            raise HTTPException(503, detail=f"database unavailable: {type(exc).__name__}") from exc
        return {
            "status": "ready",
            "index_version": version.id,
            "indexed_chunks": version.chunks or 0,
            "embedding_model": version.embedding_model,
            "query_model_matches": version.embedding_model == kb.embedder.model_id,
            "worker_heartbeat_age_s": (
                round(age, 1)
                if worker_health is not None and (age := worker_health.age_s()) is not None
                else None
            ),
        }

    return app
