"""FastAPI application: lifespan-managed database pool, health checks, search API.

Routes stay thin: they validate input and call kb_core. The process owns the embedded
PostgreSQL when DATABASE_URL is unset, so the server lives exactly as long as the app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from psycopg_pool import ConnectionPool
from pydantic import BaseModel

from bot_api import log_privacy
from bot_api.webhook import router as webhook_router
from kb_core.db import Database, open_database
from kb_core.embeddings import Embedder, query_embedder
from kb_core.index.versions import NoActiveVersion, active_version
from kb_core.search import options_from_settings
from kb_core.search import search as search_kb
from kb_core.search.hybrid import Mode, ModelMismatch
from kb_core.settings import Settings, get_settings


@dataclass
class AppState:
    settings: Settings
    database: Database
    pool: ConnectionPool[Any]
    embedder: Embedder


class Explanation(BaseModel):
    """Why a hit ranks where it does."""

    vector_score: float | None
    lexical_score: float | None
    boosts: dict[str, float]
    query_expansion: list[str]
    final_score: float
    index_version: int | None


class SearchHitOut(BaseModel):
    doc_id: int
    chunk_id: int
    title: str
    score: float
    snippet: str
    heading_path: list[str]
    url: str | None
    source: str
    external_id: str
    explain: Explanation


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
        app.state.kb = AppState(resolved, database, pool, embedder)
        try:
            yield
        finally:
            pool.close()

    log_privacy.install()
    app = FastAPI(title="Pyrus KB assistant", version="0.1.0", lifespan=lifespan)
    app.include_router(webhook_router)

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

    @app.get("/api/search", tags=["search"], response_model=list[SearchHitOut])
    async def search(
        kb: StateDep,
        q: Annotated[str, Query(min_length=1, max_length=2000, description="Question")],
        k: Annotated[int, Query(ge=1, le=50)] = 5,
        mode: Annotated[Mode | None, Query(description="hybrid, vector or lexical")] = None,
    ) -> list[dict[str, Any]]:
        """Search the knowledge base; each hit explains its vector, lexical and final score."""
        options = options_from_settings(kb.settings, mode=mode, k=k)

        def run() -> list[dict[str, Any]]:
            with kb.pool.connection() as conn:
                try:
                    hits = search_kb(conn, kb.embedder, q, options)
                except (NoActiveVersion, ModelMismatch) as exc:
                    raise HTTPException(503, detail=str(exc)) from exc
            return [hit.as_json() for hit in hits]

        return await run_in_threadpool(run)

    return app
