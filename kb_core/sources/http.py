"""HTTP with the manners remote APIs expect: time-outs, retries, back-off, Retry-After.

Both source clients (Confluence, Pyrus) send every request through :class:`ApiHttp`:
429 and transient 5xx answers and network errors are retried; after the last attempt the
error is raised with a clear message. The two kinds of failure wait differently: a rate
limit (429) says when the window resets (``Retry-After`` or ``X-RateLimit-Reset``), and that
is honoured; a server error (5xx) or a network failure backs off exponentially from about a
second, capped low, because the rate-limit window a server also reports on those answers
says nothing about when it recovers (a 5xx once waited the whole 60 s window).

A request that is not idempotent (``idempotent=False``, e.g. posting a comment) is never
retried blindly after it may have reached the server: only a 429 (refused, not processed)
and a failure to connect are retried; a 5xx or a lost reply is raised as
:class:`SourceHTTPError` with ``ambiguous`` set, for the caller to check what happened.
"""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from kb_core.errors import KbError
from kb_core.ops.metrics import timed_call

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({413, 429, 500, 502, 503, 504})


class SourceHTTPError(KbError, RuntimeError):
    """A remote API answered with an error that retrying did not (or cannot) fix."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        code: str | None = None,
        *,
        ambiguous: bool = False,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        # The request may have been carried out although no answer says so (a 5xx or a
        # lost reply to a non-idempotent call): the caller must look before repeating it.
        self.ambiguous = ambiguous


class _Retryable(Exception):
    def __init__(self, response: httpx.Response, delay: float | None) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response
        self.delay = delay


def retry_delay(response: httpx.Response, now: float | None = None) -> float | None:
    """Seconds the server asks us to wait: Retry-After (seconds or HTTP date) or, on a
    429 only, a rate-limit reset header (seconds, or a Unix time when it looks like one).
    The reset header describes the rate window, not a server error's recovery: on a 5xx
    it is ignored."""
    now = time.time() if now is None else now
    value = response.headers.get("Retry-After")
    if value:
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - now)
            except (TypeError, ValueError):
                return None
    reset = response.headers.get("X-RateLimit-Reset")
    if reset and response.status_code == 429:
        try:
            number = float(reset)
        except ValueError:
            return None
        return max(0.0, number - now) if number > 1_000_000_000 else number
    return None


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 60.0  # cap of a rate-limit wait (429)
    # 5xx and network errors: exponential from ``error_backoff_initial_s``, capped here
    # (1, 2, 4, 8 s: four retries cost about 15 s, not minutes).
    error_backoff_initial_s: float = 1.0
    error_backoff_max_s: float = 8.0


def error_backoff(policy: RetryPolicy, attempt: int) -> float:
    """Wait after the ``attempt``-th failure of a server or network error: exponential,
    capped (also by the policy's overall cap), with a little jitter so that many clients
    do not retry in step."""
    cap = min(policy.error_backoff_max_s, policy.backoff_max_s)
    base = min(cap, policy.error_backoff_initial_s * 2.0 ** (attempt - 1))
    return base + random.uniform(0, min(0.25, base / 4))


class ApiHttp:
    """An httpx client plus the retry policy; one per remote service."""

    def __init__(
        self,
        base_url: str,
        *,
        name: str,
        timeout_s: float = 30.0,
        policy: RetryPolicy | None = None,
        headers: dict[str, str] | None = None,
        auth: httpx.Auth | tuple[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.name = name
        self.policy = policy or RetryPolicy()
        self.client = httpx.Client(
            base_url=base_url,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            headers=headers,
            auth=auth,
            transport=transport,
            follow_redirects=False,
        )
        self.retries = 0  # total retried attempts, for metrics and tests

    def close(self) -> None:
        self.client.close()

    def _wait(self, state: RetryCallState) -> float:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, _Retryable) and error.response.status_code in (413, 429):
            if error.delay is not None:
                return min(error.delay, self.policy.backoff_max_s)
            return float(
                wait_exponential_jitter(
                    initial=self.policy.backoff_initial_s,
                    max=self.policy.backoff_max_s,
                    jitter=self.policy.backoff_initial_s,
                )(state)
            )
        if isinstance(error, _Retryable) and error.delay is not None:
            # A 503 with Retry-After: the server said when; still capped like any 5xx.
            return min(error.delay, self.policy.error_backoff_max_s)
        return error_backoff(self.policy, state.attempt_number)

    def _before_sleep(self, state: RetryCallState) -> None:
        self.retries += 1
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        log.warning(
            "%s: attempt %d failed (%s); retrying",
            self.name,
            state.attempt_number,
            error,
        )

    def request(
        self, method: str, url: str, *, idempotent: bool = True, **kwargs: Any
    ) -> httpx.Response:
        """Send with retries; return a 2xx-4xx response that is not retryable.

        Raises SourceHTTPError when every attempt failed, or (``idempotent=False``) at
        the first answer that leaves open whether the call was carried out.
        """

        def attempt() -> httpx.Response:
            response = self.client.request(method, url, **kwargs)
            if response.status_code in RETRY_STATUSES:
                raise _Retryable(response, retry_delay(response))
            return response

        def retryable(error: BaseException) -> bool:
            if idempotent:
                return isinstance(error, _Retryable | httpx.TransportError)
            # Refused before processing: a rate limit, or no connection at all.
            if isinstance(error, _Retryable):
                return error.response.status_code == 429
            return isinstance(error, httpx.ConnectError | httpx.ConnectTimeout)

        retrying = Retrying(
            stop=stop_after_attempt(self.policy.attempts),
            wait=self._wait,
            retry=retry_if_exception(retryable),
            before_sleep=self._before_sleep,
            reraise=True,
        )
        tried = f"after {self.policy.attempts} attempts" if idempotent else "(not idempotent)"
        try:
            with timed_call(self.name):
                return retrying(attempt)
        except _Retryable as exc:
            status = exc.response.status_code
            raise SourceHTTPError(
                f"{self.name}: {method} {url} still failing {tried}: HTTP {status}",
                status=status,
                ambiguous=status >= 500,
            ) from None
        except httpx.TransportError as exc:
            sent = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
            raise SourceHTTPError(
                f"{self.name}: {method} {url} unreachable {tried}: {type(exc).__name__}: {exc}",
                ambiguous=sent,
            ) from exc


def atlassian_auth(token: str, email: str | None) -> tuple[dict[str, str], tuple[str, str] | None]:
    """Headers and Basic credentials for an Atlassian product (Confluence, Jira): Cloud
    takes Basic ``email:api_token``, Server / Data Center a personal access token as
    Bearer."""
    headers = {"Accept": "application/json"}
    if email:
        return headers, (email, token)
    headers["Authorization"] = f"Bearer {token}"
    return headers, None
