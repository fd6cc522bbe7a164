"""HTTP with the manners remote APIs expect: time-outs, retries, back-off, Retry-After.

Both source clients (Confluence, Pyrus) send every request through :class:`ApiHttp`:
429 and transient 5xx answers and network errors are retried with exponential back-off
and jitter (tenacity), honouring ``Retry-After`` or a rate-limit reset header when the
server gives one; after the last attempt the error is raised with a clear message.
"""

from __future__ import annotations

import logging
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

from kb_core.ops.metrics import timed_call

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({413, 429, 500, 502, 503, 504})


class SourceHTTPError(RuntimeError):
    """A remote API answered with an error that retrying did not (or cannot) fix."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code


class _Retryable(Exception):
    def __init__(self, response: httpx.Response, delay: float | None) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response
        self.delay = delay


def retry_delay(response: httpx.Response, now: float | None = None) -> float | None:
    """Seconds the server asks us to wait: Retry-After (seconds or HTTP date) or a
    rate-limit reset header (seconds, or a Unix time when it looks like one)."""
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
    if reset:
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
    backoff_max_s: float = 60.0


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
        exponential = wait_exponential_jitter(
            multiplier=self.policy.backoff_initial_s,
            max=self.policy.backoff_max_s,
            jitter=self.policy.backoff_initial_s,
        )(state)
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, _Retryable) and error.delay is not None:
            return min(error.delay, self.policy.backoff_max_s)
        return exponential

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

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send with retries; return a 2xx-4xx response that is not retryable.

        Raises SourceHTTPError when every attempt failed.
        """

        def attempt() -> httpx.Response:
            response = self.client.request(method, url, **kwargs)
            if response.status_code in RETRY_STATUSES:
                raise _Retryable(response, retry_delay(response))
            return response

        retrying = Retrying(
            stop=stop_after_attempt(self.policy.attempts),
            wait=self._wait,
            retry=retry_if_exception(lambda e: isinstance(e, _Retryable | httpx.TransportError)),
            before_sleep=self._before_sleep,
            reraise=True,
        )
        try:
            with timed_call(self.name):
                return retrying(attempt)
        except _Retryable as exc:
            raise SourceHTTPError(
                f"{self.name}: {method} {url} still failing after {self.policy.attempts} "
                f"attempts: HTTP {exc.response.status_code}",
                status=exc.response.status_code,
            ) from None
        except httpx.TransportError as exc:
            raise SourceHTTPError(
                f"{self.name}: {method} {url} unreachable after {self.policy.attempts} "
                f"attempts: {type(exc).__name__}: {exc}"
            ) from exc
