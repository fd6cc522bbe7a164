"""A fake OpenID Connect provider (Keycloak's URL layout) issuing real signed tokens.

``GET /realms/{realm}/.well-known/openid-configuration`` (discovery),
``GET /realms/{realm}/protocol/openid-connect/certs`` (the JWKS) and
``POST /realms/{realm}/protocol/openid-connect/token`` (the password grant, for the
demo and tests: form fields ``grant_type=password``, ``client_id``, ``username``,
``password``). Tokens are RS256 JWTs signed with a key generated at start, carrying
``iss``, ``aud``, ``sub``, ``exp``, ``iat``, ``preferred_username`` and ``groups``.
:meth:`FakeIdentityProvider.issue` signs arbitrary claims for tests (expired tokens,
another audience); :meth:`rotate` changes the signing key, as a provider does.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI, HTTPException, Request

REALM = "kb"


@dataclass
class FakeUser:
    username: str
    password: str
    groups: list[str]
    subject: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class FakeIdentityProvider:
    """Users, the signing key and the issuer URL (set once the server listens)."""

    users: dict[str, FakeUser] = field(default_factory=dict)
    audience: str = "kb-console"
    issuer: str = ""
    token_lifetime_s: int = 300
    _keys: list[tuple[str, rsa.RSAPrivateKey]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self._keys:
            self.rotate()

    def rotate(self) -> str:
        """A new signing key (the old one stays published, as providers do)."""
        kid = uuid.uuid4().hex[:16]
        self._keys.insert(0, (kid, rsa.generate_private_key(public_exponent=65537, key_size=2048)))
        return kid

    def add_user(self, username: str, password: str, groups: list[str]) -> FakeUser:
        user = FakeUser(username, password, groups)
        self.users[username] = user
        return user

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, private in self._keys:
            jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return {"keys": keys}

    def issue(self, **claims: Any) -> str:
        """A token signed with the current key; ``claims`` override the defaults."""
        now = int(time.time())
        body: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.audience,
            "iat": now,
            "exp": now + self.token_lifetime_s,
            "typ": "Bearer",
        }
        body.update(claims)
        kid, private = self._keys[0]
        return jwt.encode(body, private, algorithm="RS256", headers={"kid": kid})

    def token_for(self, username: str) -> str:
        user = self.users[username]
        return self.issue(
            sub=user.subject, preferred_username=user.username, groups=list(user.groups)
        )


def create_identity_app(provider: FakeIdentityProvider, realm: str = REALM) -> FastAPI:
    app = FastAPI(title="fake OpenID Connect provider")
    base = f"/realms/{realm}"

    @app.get(f"{base}/.well-known/openid-configuration")
    def discovery() -> dict[str, Any]:
        return {
            "issuer": provider.issuer,
            "jwks_uri": f"{provider.issuer}/protocol/openid-connect/certs",
            "token_endpoint": f"{provider.issuer}/protocol/openid-connect/token",
            "id_token_signing_alg_values_supported": ["RS256"],
            "grant_types_supported": ["password"],
        }

    @app.get(f"{base}/protocol/openid-connect/certs")
    def certs() -> dict[str, Any]:
        return provider.jwks()

    @app.post(f"{base}/protocol/openid-connect/token")
    async def token(request: Request) -> dict[str, Any]:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        if form.get("grant_type") != "password":
            raise HTTPException(400, detail={"error": "unsupported_grant_type"})
        if form.get("client_id") != provider.audience:
            raise HTTPException(401, detail={"error": "invalid_client"})
        user = provider.users.get(form.get("username", ""))
        if user is None or user.password != form.get("password"):
            raise HTTPException(401, detail={"error": "invalid_grant"})
        return {
            "access_token": provider.token_for(user.username),
            "token_type": "Bearer",
            "expires_in": provider.token_lifetime_s,
        }

    return app
