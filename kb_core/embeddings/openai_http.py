"""An OpenAI-compatible ``/v1/embeddings`` endpoint (production: BGE-m3 behind the
corporate gateway; any server of that shape works: TEI, vLLM, Infinity, OpenAI).

What a remote model needs besides the POST:

- **batching**: texts go in requests of at most ``batch_size`` inputs;
- **adaptive batch size**: a request the server refuses as too big (HTTP 413, a 400 that
  says too many / too long / too large, or a read time-out) is halved and that part sent
  again; the size grows back (doubling, up to ``batch_size``) after a run of successful
  requests. A single text that is still refused is an :class:`EmbeddingError`;
- **retries**: 429 (honouring ``Retry-After``), 5xx and network errors are retried with
  exponential back-off and jitter, ``max_retries`` times;
- **validation**: the answer must hold one vector per input (re-ordered by ``index``),
  each of the configured dimension; anything else is an EmbeddingError that says what
  differs. Zero or non-finite vectors are returned as all-zero rows (see ``base``).

The API key is sent as a Bearer token and never logged or shown in reprs.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import numpy as np
from pydantic import SecretStr

from kb_core import openai_compat
from kb_core.embeddings.base import EmbeddingError, Vectors, normalize_rows, single_query_vector
from kb_core.openai_compat import (
    TransientError,
    endpoint,
    error_message,
    http_client,
    key_value,
)
from kb_core.sources.http import retry_delay

log = logging.getLogger(__name__)

# Successful requests in a row after which a reduced batch size doubles again.
GROW_AFTER_SUCCESSES = 8
_OVERSIZE_400 = re.compile(
    r"too (many|long|large|big)|exceed|maximum|max(imum)?[ _-]?(batch|input|token|length)"
    r"|context length|payload",
    re.IGNORECASE,
)


class _Oversized(Exception):
    """The server refused the request as too big: split it."""


def endpoint_url(base_url: str) -> str:
    """``…/v1`` → ``…/v1/embeddings``; a URL already ending in /embeddings is kept."""
    return endpoint(base_url, "/embeddings")


class OpenAIEmbedder:
    """Embeddings from an OpenAI-compatible HTTP server."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str = "bge-m3",
        dimension: int = 1024,
        api_key: SecretStr | str | None = None,
        batch_size: int = 32,
        timeout_s: float = 60.0,
        connect_timeout_s: float | None = None,
        max_retries: int = 5,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        query_prefix: str = "",
        document_prefix: str = "",
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not base_url or not base_url.strip():
            raise EmbeddingError("the embedding server URL is empty (set KB_EMBEDDING_URL)")
        if not base_url.strip().startswith(("http://", "https://")):
            raise EmbeddingError(
                f"the embedding server URL must start with http:// or https://, got {base_url!r}"
            )
        if dimension < 1 or batch_size < 1 or max_retries < 0:
            raise ValueError("dimension and batch_size must be positive, max_retries >= 0")
        self.url = endpoint_url(base_url)
        self.model = model
        self.dimension = dimension
        self.max_batch_size = batch_size
        self.max_retries = max_retries
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self.query_prefix = query_prefix
        self.document_prefix = document_prefix
        self._client = http_client(
            key_value(api_key),
            timeout_s=timeout_s,
            connect_timeout_s=connect_timeout_s,
            transport=transport,
        )
        self._sleep = sleep
        self._lock = threading.Lock()
        self._batch_size = batch_size
        self._successes = 0
        # Observable counters (tests, logs).
        self.requests = 0
        self.retries = 0
        self.splits = 0

    # -- identity ---------------------------------------------------------------------------
    @property
    def model_id(self) -> str:
        """``openai:<model>``; a document prefix changes the vectors, so it is part of the
        identity then (a short hash keeps the id, and the index name, readable)."""
        if not self.document_prefix:
            return f"openai:{self.model}"
        digest = hashlib.sha256(self.document_prefix.encode("utf-8")).hexdigest()[:8]
        return f"openai:{self.model}:p{digest}"

    @property
    def batch_size(self) -> int:
        """The current (adaptive) number of inputs per request."""
        return self._batch_size

    def __repr__(self) -> str:
        return f"OpenAIEmbedder(url={self.url!r}, model={self.model!r}, dim={self.dimension})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> OpenAIEmbedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the interface ----------------------------------------------------------------------
    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        return self._embed([self.document_prefix + text for text in texts], texts)

    def embed_query(self, text: str) -> Vectors:
        return single_query_vector(self.model_id, self._embed([self.query_prefix + text], [text]))

    # -- batching ---------------------------------------------------------------------------
    def _embed(self, inputs: list[str], originals: Sequence[str]) -> Vectors:
        out = np.zeros((len(inputs), self.dimension), dtype=np.float64)
        # Blank texts are not sent (servers reject empty inputs): they stay zero rows.
        todo = [i for i, text in enumerate(originals) if text.strip()]
        position = 0
        while position < len(todo):
            part = todo[position : position + self._batch_size]
            try:
                vectors = self._request_with_retries([inputs[i] for i in part])
            except _Oversized as exc:
                if len(part) == 1:
                    raise EmbeddingError(
                        f"{self.model_id}: the server refuses the text at position {part[0]} "
                        f"({len(inputs[part[0]])} characters) even on its own: {exc}"
                    ) from None
                self._shrink(len(part), str(exc))
                continue  # the same texts again, in smaller requests
            out[part] = vectors
            self._grow()
            position += len(part)
        return normalize_rows(out)

    def _shrink(self, failed_size: int, reason: str) -> None:
        with self._lock:
            self._batch_size = max(1, min(self._batch_size, failed_size // 2))
            self._successes = 0
            self.splits += 1
            size = self._batch_size
        log.warning(
            "%s: a request of %d texts was too big (%s); now %d per request",
            self.model_id,
            failed_size,
            reason,
            size,
        )

    def _grow(self) -> None:
        with self._lock:
            if self._batch_size >= self.max_batch_size:
                return
            self._successes += 1
            if self._successes >= GROW_AFTER_SUCCESSES:
                self._batch_size = min(self.max_batch_size, self._batch_size * 2)
                self._successes = 0

    # -- one request, retried ---------------------------------------------------------------

    def _request_with_retries(self, inputs: list[str]) -> np.ndarray[Any, Any]:
        retrying = openai_compat.retrying(
            label=self.model_id,
            max_retries=self.max_retries,
            backoff_initial_s=self.backoff_initial_s,
            backoff_max_s=self.backoff_max_s,
            sleep=self._sleep,
            on_retry=self._count_retry,
        )
        try:
            return retrying(self._request, inputs)
        except TransientError as exc:
            raise EmbeddingError(
                f"{self.model_id}: {self.url} still failing after {self.max_retries + 1} "
                f"attempts: {exc}"
            ) from None

    def _count_retry(self) -> None:
        self.retries += 1

    def _request(self, inputs: list[str]) -> np.ndarray[Any, Any]:
        self.requests += 1
        payload = {"model": self.model, "input": inputs, "encoding_format": "float"}
        try:
            response = self._client.post(self.url, json=payload)
        except (httpx.ReadTimeout, httpx.WriteTimeout) as exc:
            if len(inputs) > 1:
                raise _Oversized(f"{type(exc).__name__}") from None
            raise TransientError(f"{type(exc).__name__} on a single text") from None
        except httpx.TransportError as exc:
            raise TransientError(f"{type(exc).__name__}: {exc}") from None
        status = response.status_code
        if status == 200:
            return self._parse(response, len(inputs))
        message = error_message(response)
        if status == 413 or (status == 400 and _OVERSIZE_400.search(message)):
            raise _Oversized(f"HTTP {status}: {message}")
        if status == 429 or status >= 500:
            raise TransientError(f"HTTP {status}: {message}", retry_delay(response))
        if status in (401, 403):
            raise EmbeddingError(
                f"{self.model_id}: {self.url} rejected the credentials (HTTP {status}: "
                f"{message}); check KB_EMBEDDING_API_KEY"
            )
        if status == 404:
            raise EmbeddingError(
                f"{self.model_id}: {self.url} answered 404 ({message}); check KB_EMBEDDING_URL "
                f"(the base URL, usually ending in /v1) and KB_EMBEDDING_MODEL"
            )
        raise EmbeddingError(f"{self.model_id}: {self.url} answered HTTP {status}: {message}")

    def _parse(self, response: httpx.Response, expected: int) -> np.ndarray[Any, Any]:
        where = f"{self.model_id}: {self.url}"
        try:
            body = response.json()
        except ValueError:
            raise EmbeddingError(f"{where} answered 200 with a body that is not JSON") from None
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise EmbeddingError(f"{where}: the answer has no 'data' list")
        if len(data) != expected:
            raise EmbeddingError(f"{where}: sent {expected} texts, got {len(data)} vectors back")
        if not all(isinstance(item, dict) for item in data):
            raise EmbeddingError(f"{where}: the 'data' items are not objects")
        indexes = [item.get("index") for item in data]
        if all(index is None for index in indexes):
            ordered = data  # no indexes at all: the order of the list is the order
        elif sorted(i for i in indexes if isinstance(i, int)) == list(range(expected)):
            ordered = sorted(data, key=lambda item: int(item["index"]))
        else:
            raise EmbeddingError(
                f"{where}: the 'index' values of the answer are not 0..{expected - 1}"
            )
        rows = np.empty((expected, self.dimension), dtype=np.float64)
        for row, item in enumerate(ordered):
            vector = self._vector(item.get("embedding"), where)
            if vector.shape != (self.dimension,):
                raise EmbeddingError(
                    f"{where}: model {self.model!r} returned {vector.size}-dimensional vectors, "
                    f"but {self.dimension} are configured (KB_EMBEDDING_DIMENSION); a different "
                    "model behind the endpoint?"
                )
            rows[row] = vector
        return rows

    @staticmethod
    def _vector(embedding: Any, where: str) -> np.ndarray[Any, Any]:
        if isinstance(embedding, str):  # encoding_format=base64: little-endian float32
            try:
                return np.frombuffer(base64.b64decode(embedding), dtype="<f4").astype(np.float64)
            except ValueError:
                raise EmbeddingError(f"{where}: an embedding is not valid base64") from None
        if not isinstance(embedding, list):
            raise EmbeddingError(f"{where}: an 'embedding' is missing or not a list")
        try:
            return np.asarray(embedding, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise EmbeddingError(
                f"{where}: an embedding holds values that are not numbers"
            ) from None
