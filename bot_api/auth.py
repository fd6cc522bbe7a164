"""Who calls the console and its API, and what they may do (kb_core.console.identity).

``current_user`` resolves the caller by KB_CONSOLE_AUTH; ``Require(role)`` refuses a
caller without that role (403). Every audited call goes through ``audit``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPBasicCredentials

from bot_api.basic_auth import Utf8HTTPBasic
from kb_core.console import audit
from kb_core.console.identity import (
    AuthError,
    OidcVerifier,
    Principal,
    Pseudonyms,
    Role,
    RoleMapping,
    header_principal,
)
from kb_core.settings import Settings

log = logging.getLogger(__name__)

BEARER_CHALLENGE = 'Bearer realm="kb-console"'


@dataclass
class Identity:
    """Built once per app: the verifier caches the provider's keys."""

    settings: Settings
    mapping: RoleMapping = field(init=False)

    def __post_init__(self) -> None:
        self.mapping = RoleMapping.from_settings(self.settings)

    @cached_property
    def verifier(self) -> OidcVerifier:
        return OidcVerifier.from_settings(self.settings)

    @cached_property
    def pseudonyms(self) -> Pseudonyms:
        key = self.settings.audit_key
        return Pseudonyms(key.get_secret_value().encode() if key else None)


def _identity(request: Request) -> Identity:
    kb = request.app.state.kb
    identity: Identity | None = getattr(kb, "identity", None)
    if identity is None:
        identity = Identity(kb.settings)
        kb.identity = identity
    return identity


async def current_user(
    request: Request,
    credentials: Annotated[HTTPBasicCredentials | None, Depends(Utf8HTTPBasic(auto_error=False))],
) -> Principal:
    """The signed-in user, or 401 (no or invalid identity)."""
    identity = _identity(request)
    settings = identity.settings
    if settings.console_auth == "password":
        # The demo's shared password: its check lives with the console (bot_api.console).
        from bot_api.console import engineer

        name = engineer(request, credentials)
        return Principal(subject=name or "console", name=name, role=Role.ADMINISTRATOR)
    try:
        if settings.console_auth == "header":
            return header_principal(request.headers, settings, identity.mapping)
        scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("a bearer token from the identity provider is required")
        # Fetching the provider's keys may block: off the event loop.
        return await run_in_threadpool(identity.verifier.principal, token.strip(), identity.mapping)
    except AuthError as exc:
        raise HTTPException(
            401, detail=str(exc), headers={"WWW-Authenticate": BEARER_CHALLENGE}
        ) from None


User = Annotated[Principal, Depends(current_user)]


class Require:
    """A dependency: the caller must hold ``role`` (403 names the role missing)."""

    def __init__(self, role: Role) -> None:
        self.role = role

    def __call__(self, user: User) -> Principal:
        if not user.may(self.role):
            raise HTTPException(403, detail=f"the {self.role.label} role is required")
        return user


Agent = Annotated[Principal, Depends(Require(Role.AGENT))]
KnowledgeOwner = Annotated[Principal, Depends(Require(Role.KNOWLEDGE_OWNER))]
Administrator = Annotated[Principal, Depends(Require(Role.ADMINISTRATOR))]


@contextmanager
def audited(
    request: Request,
    user: Principal,
    action: str,
    query: str | None,
    detail: dict[str, Any] | None = None,
) -> Iterator[None]:
    """Audit the block as one call with its outcome (200, the HTTP error, or 500).
    Blocking: use it in a worker thread. Writing the entry may load the scrubber."""
    status = 500
    try:
        yield
        status = 200
    except HTTPException as exc:
        status = exc.status_code
        raise
    finally:
        _write_audit(request, user, action, query, status, detail)


def _write_audit(
    request: Request,
    user: Principal,
    action: str,
    query: str | None,
    status: int,
    detail: dict[str, Any] | None,
) -> None:
    kb = request.app.state.kb
    identity = _identity(request)
    try:
        with kb.pool.connection() as conn:
            audit.record(
                conn,
                subject=identity.pseudonyms(user.subject),
                roles=user.roles,
                action=action,
                query=query,
                status=status,
                scrub=kb.console.scrub,
                detail=detail,
            )
    except Exception as exc:
        # The answer is computed; a lost entry is logged loudly rather than failing it.
        log.error("audit entry not written: %s", type(exc).__name__)
