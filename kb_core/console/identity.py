"""Who is asking: identities, roles and groups of the console's users.

Three ways to know the user, chosen by KB_CONSOLE_AUTH:

- ``oidc``: a bearer token from the company's OpenID Connect provider (Keycloak, ADFS,
  …), verified here against the provider's signing keys (JWKS): signature, issuer,
  audience and expiry. Nothing unsigned or expired gets in.
- ``header``: an authenticating reverse proxy (oauth2-proxy and the like) signs the user
  in and passes the user and groups in headers. Only safe when nothing but the proxy can
  reach the service (deploy/k8s/bot/networkpolicy.yaml, docs/identity.md).
- ``password``: the shared password of the demo, every user an administrator.

Roles come from groups (or a roles claim): an agent searches, asks and gives feedback;
a knowledge owner also approves corrections; an administrator also reads the audit log.
Each role includes the ones before it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import httpx
import jwt

from kb_core.errors import KbError
from kb_core.settings import Settings

log = logging.getLogger(__name__)


class Role(IntEnum):
    """Ordered: a higher role may do everything a lower one may."""

    AGENT = 1
    KNOWLEDGE_OWNER = 2
    ADMINISTRATOR = 3

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Principal:
    """A signed-in user. ``subject`` is the provider's stable id; ``name`` is only shown
    on the page, never stored."""

    subject: str
    name: str | None = None
    groups: frozenset[str] = frozenset()
    role: Role | None = None  # None: signed in, but in no group that grants a role

    def may(self, role: Role) -> bool:
        return self.role is not None and self.role >= role

    @property
    def roles(self) -> list[str]:
        """Every role this user holds (the higher ones include the lower)."""
        return [r.label for r in Role if self.may(r)]


class AuthError(KbError):
    """The request carries no valid identity (HTTP 401)."""


@dataclass(frozen=True)
class RoleMapping:
    """Which groups grant which role (KB_ROLE_*_GROUPS)."""

    agent: frozenset[str] = frozenset()
    knowledge_owner: frozenset[str] = frozenset()
    administrator: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Settings) -> RoleMapping:
        return cls(
            agent=frozenset(settings.console.role_agent_groups),
            knowledge_owner=frozenset(settings.console.role_owner_groups),
            administrator=frozenset(settings.console.role_admin_groups),
        )

    def role(self, groups: Iterable[str]) -> Role | None:
        held = set(groups)
        for role, granting in (
            (Role.ADMINISTRATOR, self.administrator),
            (Role.KNOWLEDGE_OWNER, self.knowledge_owner),
            (Role.AGENT, self.agent),
        ):
            if held & granting:
                return role
        return None


def _claim_list(value: Any) -> list[str]:
    """A groups claim as a list: providers send a list, some a comma-separated string.
    Keycloak's group paths (``/kb-owners``) count by their last segment too."""
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    out: list[str] = []
    for item in items:
        text = str(item).strip()
        if text:
            out.append(text)
            if "/" in text:
                out.append(text.rstrip("/").rsplit("/", 1)[-1])
    return out


def _claim(claims: Mapping[str, Any], path: str) -> Any:
    """A claim by dotted path (``realm_access.roles``)."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


@dataclass
class OidcVerifier:
    """Verifies bearer tokens of one OpenID Connect provider.

    The signing keys come from the provider's JWKS (discovered from the issuer when
    KB_OIDC_JWKS_URL is unset) and are cached; an unknown key id refetches them (at most
    once per ``refetch_cooldown_s``, so forged key ids cannot hammer the provider), so a
    key rotation needs no restart.
    """

    issuer: str
    audience: str
    jwks_url: str | None = None
    groups_claims: tuple[str, ...] = ("groups",)
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    leeway_s: float = 30.0
    timeout_s: float = 5.0
    refetch_cooldown_s: float = 30.0
    _client: jwt.PyJWKClient | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcVerifier:
        if not settings.oidc.issuer or not settings.oidc.audience:
            raise ValueError("KB_CONSOLE_AUTH=oidc needs KB_OIDC_ISSUER and KB_OIDC_AUDIENCE")
        return cls(
            issuer=settings.oidc.issuer.rstrip("/"),
            audience=settings.oidc.audience,
            jwks_url=settings.oidc.jwks_url or None,
            groups_claims=tuple(settings.oidc.groups_claims),
            algorithms=tuple(settings.oidc.algorithms),
        )

    def _jwks(self) -> jwt.PyJWKClient:
        with self._lock:
            if self._client is None:
                url = self.jwks_url or self._discover()
                self._client = jwt.PyJWKClient(
                    url, timeout=self.timeout_s, cooldown_duration=self.refetch_cooldown_s
                )
            return self._client

    def _discover(self) -> str:
        where = f"{self.issuer}/.well-known/openid-configuration"
        try:
            response = httpx.get(where, timeout=self.timeout_s)
            response.raise_for_status()
            return str(response.json()["jwks_uri"])
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            raise AuthError(f"identity provider unavailable ({type(exc).__name__})") from None

    def claims(self, token: str) -> dict[str, Any]:
        """The token's claims once signature, issuer, audience and expiry check out."""
        try:
            key = self._jwks().get_signing_key_from_jwt(token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=list(self.algorithms),
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.PyJWKClientError as exc:
            raise AuthError(f"token signing key not found ({exc})") from None
        except jwt.InvalidTokenError as exc:
            # The reason (expired, wrong audience, bad signature) helps; the token does not.
            raise AuthError(f"invalid token: {type(exc).__name__}") from None
        return claims

    def principal(self, token: str, mapping: RoleMapping) -> Principal:
        claims = self.claims(token)
        groups: list[str] = []
        for path in self.groups_claims:
            groups.extend(_claim_list(_claim(claims, path)))
        name = claims.get("preferred_username") or claims.get("name")
        held = frozenset(groups)
        return Principal(
            subject=str(claims["sub"]),
            name=str(name) if name else None,
            groups=held,
            role=mapping.role(held),
        )


def header_principal(
    headers: Mapping[str, str], settings: Settings, mapping: RoleMapping
) -> Principal:
    """The user an authenticating proxy passed in headers (KB_AUTH_*_HEADER)."""
    user = (headers.get(settings.console.auth_user_header) or "").strip()
    if not user:
        raise AuthError(
            f"no {settings.console.auth_user_header} header from the authenticating proxy"
        )
    groups = frozenset(_claim_list(headers.get(settings.console.auth_groups_header)))
    return Principal(subject=user, name=user, groups=groups, role=mapping.role(groups))


class Pseudonyms:
    """Keyed pseudonyms of subjects for the audit log: the same user always gets the same
    pseudonym, which the security officer can compute for a given user with the key, but
    which reveals nothing without it."""

    def __init__(self, key: bytes | None) -> None:
        if key is None:
            log.warning(
                "KB_AUDIT_KEY is unset: audit pseudonyms change with every restart of the API"
            )
            key = secrets.token_bytes(32)
        self._key = key

    def __call__(self, subject: str) -> str:
        digest = hmac.new(self._key, subject.encode(), hashlib.sha256).hexdigest()
        return f"u-{digest[:24]}"
