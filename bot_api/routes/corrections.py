"""``POST /api/corrections/{task_id}/approve``: a knowledge owner's decision, from the
console (kb_core.console.approval); the corrections sensor ingests it within minutes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path

from bot_api.audit import audited
from bot_api.deps import KnowledgeOwner, StateDep
from bot_api.schemas import ApprovedOut
from kb_core.console.approval import approve_correction

router = APIRouter(tags=["console"])


@router.post("/api/corrections/{task_id}/approve", response_model=ApprovedOut)
def approve(kb: StateDep, user: KnowledgeOwner, task_id: Annotated[int, Path(ge=1)]) -> ApprovedOut:
    """Approve an «Актуализация RAG» task (knowledge owners only); the corrections
    sensor ingests it within minutes. Not a correction task: 404; Pyrus failing: 502."""
    services = kb.console
    with audited(kb, user, "approve", None, {"task_id": task_id}):
        if services.pyrus is None:
            raise HTTPException(503, detail="Pyrus is not configured (KB_PYRUS_LOGIN)")
        approve_correction(services.pyrus, services.filing, task_id)
    return ApprovedOut(task_id=task_id, approved=True)
