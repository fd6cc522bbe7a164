"""``GET /api/me`` (who am I: roles decide what the page offers) and ``GET /api/audit``
(the audit log, an administrator's to read)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from bot_api.audit import audited
from bot_api.deps import Administrator, CurrentUser, StateDep
from bot_api.schemas import AuditEntryOut, MeOut
from kb_core.console import audit

router = APIRouter(tags=["console"])


@router.get("/api/me", response_model=MeOut)
def me(user: CurrentUser) -> MeOut:
    """The signed-in user as the console sees them: roles decide what the page offers."""
    return MeOut(name=user.name, roles=user.roles, groups=sorted(user.groups))


@router.get("/api/audit", response_model=list[AuditEntryOut])
def audit_log(
    kb: StateDep, user: Administrator, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[AuditEntryOut]:
    """The latest audit entries (administrators only): pseudonymous, scrubbed."""
    with audited(kb, user, "audit", None), kb.pool.connection() as conn:
        rows = audit.recent(conn, limit)
    return [AuditEntryOut.model_validate({**row, "at": row["at"].isoformat()}) for row in rows]
