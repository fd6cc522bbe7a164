"""What the OpenAI-compatible clients (embeddings, chat) share: the HTTP client, endpoints,
errors, retries."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
from pydantic import SecretStr
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

log = logging.getLogger(__name__)


class TransientError(Exception):
    """Worth another attempt after a pause (``delay``: what the server asked for)."""

    def __init__(self, message: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


def key_value(api_key: SecretStr | str | None) -> str | None:
    """The API key as text (settings hold it as a SecretStr, tests pass plain strings)."""
    return api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key


def http_client(
    api_key: str | None,
    *,
    timeout_s: float,
    connect_timeout_s: float | None,
    transport: httpx.BaseTransport | None,
) -> httpx.Client:
    """One pooled client per server: JSON, a Bearer key when there is one, no redirects
    (a redirect would resend the key elsewhere), and a short connect time-out (at most
    10 s unless given) so an unreachable server fails fast while a slow answer may take
    the whole ``timeout_s``."""
    headers = {"Accept": "application/json", "User-Agent": "pyrus-kb"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return httpx.Client(
        timeout=httpx.Timeout(
            timeout_s, connect=connect_timeout_s if connect_timeout_s else min(timeout_s, 10.0)
        ),
        headers=headers,
        transport=transport,
        follow_redirects=False,
    )


def error_message(response: httpx.Response) -> str:
    """The server's own words: OpenAI's {"error": {"message"}} or whatever it sent."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300].strip() or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:300]
        if isinstance(error, str):
            return error[:300]
        for key in ("message", "detail"):
            if body.get(key):
                return str(body[key])[:300]
    return str(body)[:300]


def endpoint(base_url: str, path: str) -> str:
    """``…/v1`` + ``/embeddings`` → ``…/v1/embeddings``; a URL already ending so is kept."""
    url = base_url.strip().rstrip("/")
    return url if url.endswith(path) else f"{url}{path}"


def retrying(
    *,
    label: str,
    max_retries: int,
    backoff_initial_s: float,
    backoff_max_s: float,
    sleep: Callable[[float], None],
    on_retry: Callable[[], None],
) -> Retrying:
    """Retries of :class:`TransientError`: exponential backoff with jitter, or the wait the
    server asked for (Retry-After, capped at a minute or ``backoff_max_s``)."""

    def wait(state: RetryCallState) -> float:
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, TransientError) and error.delay is not None:
            return min(error.delay, max(backoff_max_s, 60.0))
        return float(
            wait_exponential_jitter(
                multiplier=backoff_initial_s, max=backoff_max_s, jitter=backoff_initial_s
            )(state)
        )

    def before_sleep(state: RetryCallState) -> None:
        on_retry()
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        log.warning(
            "%s: attempt %d of %d failed (%s); retrying",
            label,
            state.attempt_number,
            max_retries + 1,
            error,
        )

    return Retrying(
        stop=stop_after_attempt(max_retries + 1),
        wait=wait,
        retry=retry_if_exception_type(TransientError),
        before_sleep=before_sleep,
        sleep=sleep,
        reraise=True,
    )
