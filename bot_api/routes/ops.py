"""``/healthz`` (liveness) and ``/readyz`` (readiness); ``/metrics``: bot_api.observability."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException

from bot_api.deps import StateDep
from bot_api.schemas import HealthOut, ReadyOut
from kb_core.index.versions import NoActiveVersion, active_version

router = APIRouter(tags=["ops"])


@router.get("/healthz", response_model=HealthOut)
def healthz() -> HealthOut:
    """Liveness: the process serves requests."""
    return HealthOut(status="ok")


@router.get("/readyz", response_model=ReadyOut)
def readyz(kb: StateDep) -> ReadyOut:
    """Readiness: the database answers, an index version has been promoted and, when
    this process runs the worker, its threads live and poll."""
    worker = kb.worker_health
    if worker is not None:
        problem = worker.problem(kb.settings.bot.worker_stale_s)
        if problem is not None:
            raise HTTPException(503, detail=problem)
    # Readiness answers every failure itself (503 with the reason), with a short wait.
    try:
        with kb.pool.connection(timeout=2) as conn:
            version = active_version(conn)
    except NoActiveVersion as exc:
        raise HTTPException(503, detail=str(exc)) from exc
    except Exception as exc:
        raise HTTPException(503, detail=f"database unavailable: {type(exc).__name__}") from exc
    age = worker.age_s() if worker is not None else None
    return ReadyOut(
        status="ready",
        index_version=version.id,
        indexed_chunks=version.chunks or 0,
        embedding_model=version.embedding_model,
        query_model_matches=version.embedding_model == kb.embedder.model_id,
        worker_heartbeat_age_s=round(age, 1) if age is not None else None,
    )
