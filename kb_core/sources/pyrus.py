"""Pyrus API v4 client on httpx.

Logs in with the bot's login and security key, uses the ``api_url`` the auth answer
returns, and logs in again transparently (once per request) on 401 or the
``expired_token`` / ``revoked_token`` error codes. Rate limits: the
``X-RateLimit-*`` headers of the last answer are kept, and 429 is retried with back-off
by :class:`ApiHttp`. The API shapes it relies on are reproduced by ``kb_fakes/pyrus.py``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from kb_core.sources.http import ApiHttp, RetryPolicy, SourceHTTPError

log = logging.getLogger(__name__)

RELOGIN_CODES = frozenset({"expired_token", "revoked_token", "invalid_token"})


@dataclass(frozen=True)
class RateLimit:
    limit: int | None
    remaining: int | None
    reset: str | None


class PyrusClient:
    """A bot's session with Pyrus."""

    def __init__(
        self,
        *,
        login: str,
        security_key: str,
        api_url: str = "https://api.pyrus.com/v4",
        auth_url: str = "https://accounts.pyrus.com/api/v4",
        timeout_s: float = 30.0,
        policy: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._login = login
        self._security_key = security_key
        self._auth_url = auth_url.rstrip("/")
        self._api_url = api_url.rstrip("/") + "/"
        self._timeout_s = timeout_s
        self._policy = policy
        self._transport = transport
        self._token: str | None = None
        self._lock = threading.Lock()
        self.http = ApiHttp(
            self._api_url,
            name="pyrus",
            timeout_s=timeout_s,
            policy=policy,
            headers={"Accept": "application/json"},
            transport=transport,
        )
        self.logins = 0
        self._auth_retries = 0
        self.rate_limit: RateLimit | None = None

    @property
    def retries(self) -> int:
        """Retried attempts so far, API and login calls together (for metrics)."""
        return self.http.retries + self._auth_retries

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> PyrusClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- session -------------------------------------------------------------------------
    def _authenticate(self) -> str:
        auth = ApiHttp(
            self._auth_url + "/",
            name="pyrus-auth",
            timeout_s=self._timeout_s,
            policy=self._policy,
            transport=self._transport,
        )
        try:
            response = auth.request(
                "POST", "auth", json={"login": self._login, "security_key": self._security_key}
            )
        finally:
            self._auth_retries += auth.retries
            auth.close()
        body = _json(response)
        if response.status_code != 200 or "access_token" not in body:
            raise SourceHTTPError(
                f"pyrus: login failed (HTTP {response.status_code}, "
                f"{body.get('error_code') or body.get('error') or 'no token'}); "
                "check KB_PYRUS_LOGIN and KB_PYRUS_SECURITY_KEY",
                status=response.status_code,
                code=body.get("error_code"),
            )
        api_url = body.get("api_url")
        if api_url and api_url.rstrip("/") + "/" != self._api_url:
            self._api_url = api_url.rstrip("/") + "/"
            self.http.client.base_url = httpx.URL(self._api_url)
        self.logins += 1
        return str(body["access_token"])

    def _token_value(self, *, refresh: bool = False, stale: str | None = None) -> str:
        with self._lock:
            # Another thread may have refreshed while we waited for the lock.
            if self._token is None or (refresh and self._token == stale):
                self._token = self._authenticate()
            return self._token

    def request(
        self, method: str, path: str, *, idempotent: bool = True, **kwargs: Any
    ) -> dict[str, Any]:
        """Call the API as the bot; re-login once when the token is rejected (a 401 is
        refused before processing, so even a non-idempotent call may be sent again)."""
        token = self._token_value()
        for attempt in (1, 2):
            response = self.http.request(
                method,
                path,
                idempotent=idempotent,
                headers={"Authorization": f"Bearer {token}"},
                **kwargs,
            )
            self._remember_rate_limit(response)
            body = _json(response)
            code = body.get("error_code")
            if attempt == 1 and (response.status_code == 401 or code in RELOGIN_CODES):
                log.info("pyrus: token rejected (%s), logging in again", code or "401")
                token = self._token_value(refresh=True, stale=token)
                continue
            if response.status_code >= 400 or code:
                raise SourceHTTPError(
                    f"pyrus: {method} {path} failed: HTTP {response.status_code} "
                    f"{code or ''} {body.get('error') or ''}".strip(),
                    status=response.status_code,
                    code=code,
                )
            return body
        raise AssertionError("unreachable")

    def _remember_rate_limit(self, response: httpx.Response) -> None:
        headers = response.headers
        if "X-RateLimit-Limit" in headers:
            self.rate_limit = RateLimit(
                limit=_int(headers.get("X-RateLimit-Limit")),
                remaining=_int(headers.get("X-RateLimit-Remaining")),
                reset=headers.get("X-RateLimit-Reset"),
            )

    # -- API -----------------------------------------------------------------------------
    def get_task(self, task_id: int) -> dict[str, Any]:
        task: dict[str, Any] = self.request("GET", f"tasks/{task_id}")["task"]
        return task

    def post_comment(
        self,
        task_id: int,
        *,
        text: str | None = None,
        formatted_text: str | None = None,
        field_updates: list[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Add a comment; exactly one of ``text`` / ``formatted_text`` (HTML).

        Without ``channel`` the comment is internal: only task participants see it. Not
        retried on a 5xx or a lost reply (a second comment would be a duplicate): the
        :class:`SourceHTTPError` is ``ambiguous`` then, and the caller looks first.
        """
        if (text is None) == (formatted_text is None):
            raise ValueError("give exactly one of text or formatted_text")
        body: dict[str, Any] = {**extra}
        if text is not None:
            body["text"] = text
        else:
            body["formatted_text"] = formatted_text
        if field_updates:
            body["field_updates"] = field_updates
        task: dict[str, Any] = self.request(
            "POST", f"tasks/{task_id}/comments", json=body, idempotent=False
        )["task"]
        return task

    def create_task(
        self, form_id: int, fields: list[dict[str, Any]], *, text: str | None = None
    ) -> dict[str, Any]:
        """A new task of a form (``fields``: ``{"id", "value"}`` items), as the bot."""
        body: dict[str, Any] = {"form_id": form_id, "fields": fields}
        if text:
            body["text"] = text
        task: dict[str, Any] = self.request("POST", "tasks", json=body, idempotent=False)["task"]
        return task

    def iter_register(
        self,
        form_id: int,
        *,
        modified_after: str | None = None,
        include_archived: bool = True,
        page_size: int = 500,
        extra: dict[str, Any] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every task of a form's register (without comments), ascending by id.

        Pages with ``sort=id`` and ``id=gt<last id>``: stable even when tasks change
        while we read.
        """
        last_id = 0
        while True:
            body: dict[str, Any] = {"sort": "id", "item_count": page_size, **(extra or {})}
            if last_id:
                body["id"] = f"gt{last_id}"
            if include_archived:
                body["include_archived"] = "y"
            if modified_after:
                body["modified_after"] = modified_after
            tasks = self.request("POST", f"forms/{form_id}/register", json=body).get("tasks", [])
            yield from tasks
            if len(tasks) < page_size:
                return
            last_id = max(int(t["id"]) for t in tasks)

    def download_file(self, file_id: int, *, max_bytes: int) -> bytes | None:
        """An attachment's bytes (``GET files/download/{id}``, as the official clients
        call it), or None when it is larger than ``max_bytes``: the body is streamed and
        dropped at the limit, so a huge file is never held in memory."""
        for attempt in (1, 2):
            token = self._token_value()
            with self.http.client.stream(
                "GET", f"files/download/{file_id}", headers={"Authorization": f"Bearer {token}"}
            ) as response:
                self._remember_rate_limit(response)
                if response.status_code == 401 and attempt == 1:
                    self._token_value(refresh=True, stale=token)
                    continue
                if response.status_code >= 400:
                    response.read()
                    body = _json(response)
                    raise SourceHTTPError(
                        f"pyrus: GET files/download/{file_id} failed: HTTP "
                        f"{response.status_code} {body.get('error_code') or ''}".strip(),
                        status=response.status_code,
                        code=body.get("error_code"),
                    )
                data = bytearray()
                for part in response.iter_bytes():
                    data += part
                    if len(data) > max_bytes:
                        return None
                return bytes(data)
        raise AssertionError("unreachable")

    def get_form(self, form_id: int) -> dict[str, Any]:
        return self.request("GET", f"forms/{form_id}")

    def get_catalog(self, catalog_id: int) -> dict[str, Any]:
        return self.request("GET", f"catalogs/{catalog_id}")

    def get_members(self) -> list[dict[str, Any]]:
        """The organisation's people (the ``person_directory`` asset reads their names)."""
        members: list[dict[str, Any]] = self.request("GET", "members").get("members", [])
        return members


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
