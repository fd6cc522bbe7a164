"""The one HTTP POST both notification services make: retried, and safe to log.

The messenger and the print service differ in what they send and what a good answer is,
not in how they reach the server: an http(s) URL checked up front, one httpx client,
429 / 5xx / network errors / time-outs retried with backoff (the product's policy in
:func:`kb_core.openai_compat.retrying`), and errors named by their type only, because
transport errors may quote the URL, which carries a token.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Self, TypeVar

import httpx

from kb_core.openai_compat import TransientError, error_message, retrying
from kb_core.sources.http import retry_delay

T = TypeVar("T")


class RetriedPost:
    def __init__(
        self,
        url: str,
        *,
        setting: str,
        timeout_s: float,
        max_retries: int,
        backoff_initial_s: float,
        backoff_max_s: float,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError(f"{setting} must be an http(s) URL")
        self._url = url
        self.host = parsed.host
        self.max_retries = max_retries
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self._sleep = sleep
        self._client = httpx.Client(timeout=timeout_s, transport=transport)

    def _post(self, **request: Any) -> httpx.Response:
        """One attempt; 429 and 5xx answers are :class:`TransientError` like network
        errors, any other answer is returned for the caller to judge."""
        try:
            response = self._client.post(self._url, **request)
        except httpx.TimeoutException as exc:
            raise TransientError(f"{type(exc).__name__} (time-out)") from None
        except httpx.TransportError as exc:
            raise TransientError(type(exc).__name__) from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise TransientError(
                f"HTTP {status}: {error_message(response)[:200]}", retry_delay(response)
            )
        return response

    def _with_retries(self, label: str, attempt: Callable[[], T]) -> T:
        """``attempt()``, retried on :class:`TransientError`; the last one, re-raised,
        says how many attempts were made."""
        policy = retrying(
            label=label,
            max_retries=self.max_retries,
            backoff_initial_s=self.backoff_initial_s,
            backoff_max_s=self.backoff_max_s,
            sleep=self._sleep,
            on_retry=lambda: None,
        )
        try:
            return policy(attempt)
        except TransientError as exc:
            attempts = policy.statistics.get("attempt_number", 1)
            raise TransientError(f"{exc} after {attempts} attempt(s)") from None

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
