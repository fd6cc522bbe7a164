"""Who calls the console and its API (kb_core.console.identity), by KB_CONSOLE_AUTH.

The checks behind ``bot_api.deps.current_user``: the demo's shared password (HTTP Basic,
open when KB_CONSOLE_OPEN is set), the headers of an authenticating proxy, or an OpenID
Connect bearer token. Every refusal is a :class:`Refused`, which the app's exception
handler records in the audit log (no personal data: a pseudonym at most) before
answering 401 or 403.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from fastapi import HTTPException
from fastapi.security import HTTPBasicCredentials

from bot_api.state import Identity
from kb_core.console.identity import AuthError, Principal, Role, header_principal
from kb_core.settings import Settings

BASIC_CHALLENGE = 'Basic realm="kb-console", charset="UTF-8"'
BEARER_CHALLENGE = 'Bearer realm="kb-console"'


class Refused(HTTPException):
    """A 401 or 403 of the console: answered as any HTTPException, and audited.

    ``principal`` is the caller when known (403); a 401 has none."""

    def __init__(
        self,
        status_code: int,
        detail: str,
        headers: dict[str, str] | None = None,
        principal: Principal | None = None,
    ) -> None:
        super().__init__(status_code, detail=detail, headers=headers)
        self.principal = principal


def engineer(settings: Settings, credentials: HTTPBasicCredentials | None) -> str | None:
    """The engineer's name from the shared-password login, or None on an open console."""
    if settings.console.open:
        return credentials.username if credentials else None
    if settings.console.password is None:
        raise HTTPException(503, detail="console access is not configured (KB_CONSOLE_PASSWORD)")
    expected = settings.console.password.get_secret_value().encode()
    given = credentials.password.encode() if credentials else b""
    if credentials is None or not secrets.compare_digest(given, expected):
        raise Refused(401, "password required", headers={"WWW-Authenticate": BASIC_CHALLENGE})
    return credentials.username or None


def password_principal(settings: Settings, credentials: HTTPBasicCredentials | None) -> Principal:
    """The shared password grants everything: it is the demo's single operator."""
    name = engineer(settings, credentials)
    return Principal(subject=name or "console", name=name, role=Role.ADMINISTRATOR)


def _unauthenticated(exc: AuthError) -> Refused:
    return Refused(401, str(exc), headers={"WWW-Authenticate": BEARER_CHALLENGE})


def header_user(headers: Mapping[str, str], identity: Identity) -> Principal:
    """The user an authenticating proxy named in headers."""
    try:
        return header_principal(headers, identity.settings, identity.mapping)
    except AuthError as exc:
        raise _unauthenticated(exc) from None


def bearer_user(authorization: str | None, identity: Identity) -> Principal:
    """The user of an OpenID Connect bearer token. Blocking (may fetch the keys)."""
    scheme, _, token = (authorization or "").partition(" ")
    try:
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("a bearer token from the identity provider is required")
        return identity.verifier.principal(token.strip(), identity.mapping)
    except AuthError as exc:
        raise _unauthenticated(exc) from None
