"""A client for an OpenAI-compatible ``/v1/chat/completions`` endpoint (the corporate LLM;
vLLM, TGI, llama.cpp server, Ollama and OpenAI have the same shape).

One request: ``model``, ``messages``, ``temperature`` 0 and, in JSON mode,
``response_format={"type": "json_object"}``. A server that refuses ``response_format``
(HTTP 400 naming it) is asked again without it, once per client, and from then on; the
answer is validated by the caller either way. 429 (honouring ``Retry-After``), 5xx,
network errors and time-outs are retried ``max_retries`` times with exponential back-off
and jitter; then, and on any other error (401/403: the key, 404: the URL or model), an
:class:`LLMError` says what happened.

The API key is sent as a Bearer token only: it is never logged, never part of a repr or
an error message, and never put into a request body. Logs name the endpoint and the
status, never message contents (tickets hold personal data).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypedDict

import httpx
from pydantic import SecretStr

from kb_core import openai_compat
from kb_core.errors import KbError
from kb_core.openai_compat import (
    TransientError,
    endpoint,
    error_message,
    http_client,
    key_value,
)
from kb_core.ops.metrics import timed_call
from kb_core.settings import Settings
from kb_core.sources.http import retry_delay

log = logging.getLogger(__name__)


class LLMError(KbError, RuntimeError):
    """The LLM could not be asked: unreachable, refusing, or still failing after retries."""


class ChatMessage(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class ChatReply:
    """The assistant's message and what the server said about it."""

    content: str
    model: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    attempts: int


class _NoJsonMode(Exception):
    """The server does not accept ``response_format``."""


def chat_endpoint(base_url: str) -> str:
    """``…/v1`` → ``…/v1/chat/completions``; a URL already ending so is kept."""
    return endpoint(base_url, "/chat/completions")


class ChatClient:
    """Chat completions from an OpenAI-compatible HTTP server."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str = "corporate-llm",
        api_key: SecretStr | str | None = None,
        timeout_s: float = 300.0,
        connect_timeout_s: float | None = None,
        max_retries: int = 3,
        backoff_initial_s: float = 1.0,
        backoff_max_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not base_url or not base_url.strip():
            raise LLMError("the LLM URL is empty (set KB_LLM_URL)")
        if not base_url.strip().startswith(("http://", "https://")):
            raise LLMError("KB_LLM_URL must start with http:// or https://")
        if max_retries < 0 or timeout_s <= 0:
            raise ValueError("max_retries must be >= 0 and timeout_s positive")
        self.url = chat_endpoint(base_url)
        # What an OpenAI SDK client needs to reach the same server (evaluation frameworks):
        # the base URL (``…/v1``), the key (a SecretStr: masked in any repr) and the time-out.
        self.base_url = self.url.removesuffix("/chat/completions")
        self.timeout_s = timeout_s
        self.model = model
        self.max_retries = max_retries
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        key = key_value(api_key)
        self.api_key: SecretStr | None = SecretStr(key) if key else None
        self._client = http_client(
            key, timeout_s=timeout_s, connect_timeout_s=connect_timeout_s, transport=transport
        )
        self._sleep = sleep
        self._lock = threading.Lock()
        self.json_mode_supported = True
        # Observable counters (tests, metrics).
        self.requests = 0
        self.retries = 0

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ChatClient | None:
        """The configured client, or None when ``KB_LLM_URL`` is unset (extractive mode)."""
        if not (settings.llm.url or "").strip():
            return None
        options: dict[str, Any] = {
            "model": settings.llm.model,
            "api_key": settings.llm.api_key,
            "timeout_s": settings.llm.timeout_s,
            # KB_LLM_MAX_RETRIES counts attempts in all (the seed's MAX_RETRIES=3 is three
            # requests); the client counts the retries after the first.
            "max_retries": settings.llm.max_retries - 1,
        }
        options.update(overrides)
        return cls(str(settings.llm.url), **options)

    def __repr__(self) -> str:
        return f"ChatClient(url={self.url!r}, model={self.model!r})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the call ---------------------------------------------------------------------------
    def chat(self, messages: Sequence[ChatMessage], *, json_mode: bool = True) -> ChatReply:
        """The assistant's reply to ``messages`` (temperature 0); LLMError when impossible."""
        if not messages:
            raise ValueError("no messages to send")
        attempts = [0]

        def attempt() -> ChatReply:
            attempts[0] += 1
            use_json = json_mode and self.json_mode_supported
            try:
                return self._request(messages, use_json, attempts[0])
            except _NoJsonMode:
                with self._lock:
                    self.json_mode_supported = False
                log.warning(
                    "LLM %s refuses response_format=json_object; asking without it", self.url
                )
                return self._request(messages, False, attempts[0])

        retrying = openai_compat.retrying(
            label=f"LLM {self.url}",
            max_retries=self.max_retries,
            backoff_initial_s=self.backoff_initial_s,
            backoff_max_s=self.backoff_max_s,
            sleep=self._sleep,
            on_retry=self._count_retry,
        )
        try:
            return retrying(attempt)
        except TransientError as exc:
            raise LLMError(
                f"LLM {self.url} still failing after {self.max_retries + 1} attempts: {exc}"
            ) from None

    def _count_retry(self) -> None:
        self.retries += 1

    def _request(self, messages: Sequence[ChatMessage], json_mode: bool, attempt: int) -> ChatReply:
        self.requests += 1
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "temperature": 0,
        }
        if json_mode:
            payload["response_format"] = {"type": "json_object"}
        try:
            with timed_call("llm"):
                response = self._client.post(self.url, json=payload)
        except httpx.TimeoutException as exc:
            raise TransientError(f"{type(exc).__name__} (time-out)") from None
        except httpx.TransportError as exc:
            raise TransientError(f"{type(exc).__name__}: {exc}") from None
        status = response.status_code
        if status == 200:
            return self._parse(response, attempt)
        message = error_message(response)
        if status == 429 or status >= 500:
            raise TransientError(f"HTTP {status}: {message}", retry_delay(response))
        if status in (401, 403):
            raise LLMError(
                f"LLM {self.url} rejected the credentials (HTTP {status}: {message}); "
                "check KB_LLM_API_KEY"
            )
        if status == 404:
            raise LLMError(
                f"LLM {self.url} answered 404 ({message}); check KB_LLM_URL (the base URL, "
                "usually ending in /v1) and KB_LLM_MODEL"
            )
        if status in (400, 422) and json_mode and "response_format" in message:
            raise _NoJsonMode(message)
        raise LLMError(f"LLM {self.url} answered HTTP {status}: {message}")

    def _parse(self, response: httpx.Response, attempt: int) -> ChatReply:
        where = f"LLM {self.url}"
        try:
            body = response.json()
        except ValueError:
            raise LLMError(f"{where} answered 200 with a body that is not JSON") from None
        choices = body.get("choices") if isinstance(body, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise LLMError(f"{where}: the answer has no 'choices'")
        message = choices[0].get("message")
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str):
            raise LLMError(f"{where}: the answer's message has no text content")
        usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
        return ChatReply(
            content=content,
            model=str(body.get("model") or self.model),
            finish_reason=choices[0].get("finish_reason"),
            prompt_tokens=_int_or_none(usage.get("prompt_tokens")),
            completion_tokens=_int_or_none(usage.get("completion_tokens")),
            attempts=attempt,
        )


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) else None
