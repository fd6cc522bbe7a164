"""Console routes beyond asking: who am I, approve a correction, read the audit log.

Each route states the role it needs (bot_api.auth): approving is a knowledge owner's
decision, the audit log an administrator's to read.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from bot_api.auth import Administrator, KnowledgeOwner, User, audited
from kb_core.console import audit
from kb_core.console.approval import NotACorrection, approve_correction
from kb_core.sources.http import SourceHTTPError

router = APIRouter()


class MeOut(BaseModel):
    name: str | None
    roles: list[str]
    groups: list[str]


class ApprovedOut(BaseModel):
    task_id: int
    approved: bool


@router.get("/api/me", tags=["console"], response_model=MeOut)
async def me(user: User) -> dict[str, Any]:
    """The signed-in user as the console sees them: roles decide what the page offers."""
    return {"name": user.name, "roles": user.roles, "groups": sorted(user.groups)}


@router.post("/api/corrections/{task_id}/approve", tags=["console"], response_model=ApprovedOut)
async def approve(
    request: Request, user: KnowledgeOwner, task_id: Annotated[int, Path(ge=1)]
) -> dict[str, Any]:
    """Approve an «Актуализация RAG» task (knowledge owners only); the corrections
    sensor ingests it within minutes."""
    kb = request.app.state.kb
    deps = kb.console

    def run() -> dict[str, Any]:
        with audited(request, user, "approve", None, {"task_id": task_id}):
            if deps.pyrus is None:
                raise HTTPException(503, detail="Pyrus is not configured (KB_PYRUS_LOGIN)")
            try:
                approve_correction(deps.pyrus, deps.filing, task_id)
            except NotACorrection as exc:
                raise HTTPException(404, detail=str(exc)) from exc
            except SourceHTTPError as exc:
                if exc.status == 404:
                    raise HTTPException(404, detail=f"no task {task_id} in Pyrus") from exc
                raise HTTPException(502, detail=f"Pyrus: {exc}") from exc
        return {"task_id": task_id, "approved": True}

    return await run_in_threadpool(run)


@router.get("/api/audit", tags=["console"])
async def audit_log(
    request: Request, user: Administrator, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[dict[str, Any]]:
    """The latest audit entries (administrators only): pseudonymous, scrubbed."""
    kb = request.app.state.kb

    def run() -> list[dict[str, Any]]:
        with audited(request, user, "audit", None), kb.pool.connection() as conn:
            rows = audit.recent(conn, limit)
        for row in rows:
            row["at"] = row["at"].isoformat()
        return rows

    return await run_in_threadpool(run)
