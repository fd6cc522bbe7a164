"""The typed dependencies every route declares (as FastAPI's full-stack template does).

Routes never reach into ``request.app.state``: they name what they need with one of the
``Annotated`` aliases below (``SettingsDep``, ``PoolDep``, ``ServicesDep``, ``Agent``, …)
and FastAPI resolves it. The state dependency is defined here once; who the caller is and
which role they need are resolved here too (the checks themselves: ``bot_api.auth``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPBasicCredentials
from psycopg_pool import ConnectionPool

from bot_api import auth
from bot_api.basic_auth import Utf8HTTPBasic
from bot_api.state import AppState, ConsoleServices, Identity
from kb_core.console.identity import Principal, Role
from kb_core.db import Database
from kb_core.embeddings import Embedder
from kb_core.settings import Settings


def state_of(request: Request) -> AppState:
    """The app's state, built by the lifespan (also for exception handlers)."""
    kb: AppState = request.app.state.kb
    return kb


def settings_of(kb: Annotated[AppState, Depends(state_of)]) -> Settings:
    return kb.settings


def get_database(kb: Annotated[AppState, Depends(state_of)]) -> Database:
    return kb.database


def get_pool(kb: Annotated[AppState, Depends(state_of)]) -> ConnectionPool[Any]:
    return kb.pool


def get_embedder(kb: Annotated[AppState, Depends(state_of)]) -> Embedder:
    return kb.embedder


def get_services(kb: Annotated[AppState, Depends(state_of)]) -> ConsoleServices:
    return kb.console


def get_identity(kb: Annotated[AppState, Depends(state_of)]) -> Identity:
    return kb.identity


StateDep = Annotated[AppState, Depends(state_of)]
SettingsDep = Annotated[Settings, Depends(settings_of)]
DatabaseDep = Annotated[Database, Depends(get_database)]
PoolDep = Annotated[ConnectionPool[Any], Depends(get_pool)]
EmbedderDep = Annotated[Embedder, Depends(get_embedder)]
ServicesDep = Annotated[ConsoleServices, Depends(get_services)]
IdentityDep = Annotated[Identity, Depends(get_identity)]
BasicCredentials = Annotated[HTTPBasicCredentials | None, Depends(Utf8HTTPBasic(auto_error=False))]


async def current_user(
    request: Request, identity: IdentityDep, credentials: BasicCredentials
) -> Principal:
    """The signed-in user by KB_CONSOLE_AUTH, or 401 (no or invalid identity)."""
    settings = identity.settings
    if settings.console.auth == "password":
        return auth.password_principal(settings, credentials)
    if settings.console.auth == "header":
        return auth.header_user(request.headers, identity)
    # Fetching the provider's keys may block: off the event loop.
    return await run_in_threadpool(auth.bearer_user, request.headers.get("authorization"), identity)


CurrentUser = Annotated[Principal, Depends(current_user)]


class Require:
    """A dependency: the caller must hold ``role`` (403 names the role missing)."""

    def __init__(self, role: Role) -> None:
        self.role = role

    def __call__(self, user: CurrentUser) -> Principal:
        if not user.may(self.role):
            raise auth.Refused(
                403, detail=f"the {self.role.label} role is required", principal=user
            )
        return user


Agent = Annotated[Principal, Depends(Require(Role.AGENT))]
KnowledgeOwner = Annotated[Principal, Depends(Require(Role.KNOWLEDGE_OWNER))]
Administrator = Annotated[Principal, Depends(Require(Role.ADMINISTRATOR))]
