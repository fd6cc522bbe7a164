"""FastAPI application: lifespan-managed database pool, health checks, the agent console.

Routes stay thin: they validate input and call kb_core. The process owns the embedded
PostgreSQL when DATABASE_URL is unset, so the server lives exactly as long as the app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from psycopg_pool import ConnectionPool

from bot_api import log_privacy
from bot_api.console import ConsoleDeps
from bot_api.console import router as console_router
from bot_api.events import router as events_router
from bot_api.webhook import router as webhook_router
from kb_core.db import Database, open_database
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


def create_app(settings: Settings | None = None) -> FastAPI:
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
    app.include_router(events_router)

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    def prometheus_metrics() -> Response:
        """Prometheus exposition: webhooks, jobs, retrieval, LLM errors, embeddings."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, str]:
        """Liveness: the process serves requests."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    def readyz(kb: StateDep) -> dict[str, Any]:
        """Readiness: the database answers and an index version has been promoted."""
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
        }

    return app
