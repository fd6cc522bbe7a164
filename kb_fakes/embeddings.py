"""A fake OpenAI-compatible embedding server (``POST /v1/embeddings``) over real HTTP.

Request and answer have the real API's shape: ``{"model", "input": str | [str],
"encoding_format": "float" | "base64"}`` → ``{"object": "list", "data": [{"object":
"embedding", "index", "embedding"}], "model", "usage": {"prompt_tokens",
"total_tokens"}}``; errors as OpenAI sends them, ``{"error": {"message", "type",
"code"}}``: 401 for a wrong Bearer key (when a key is configured), 400 for more than
``max_inputs`` inputs or an empty input, 413 for a body over ``max_body_bytes``, 404 for
a model it does not serve (when ``models`` is set).

Vectors are deterministic and meaningful enough for retrieval tests: a hashed bag of
lower-cased word tokens and character trigrams, L2-normalised, so texts sharing words
are close. An input containing ``<<zero-vector>>`` gets an all-zero vector. Options
(mutable at run time through ``app.state.config``): dimension, shuffled ``data`` order.
Admin endpoints queue faults (429 with Retry-After, 5xx, delays; see faults.py) and
expose the request log (how many inputs each request carried).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import random
import re
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from kb_fakes.faults import Faults

ZERO_VECTOR_MARKER = "<<zero-vector>>"
FAKE_EMBEDDING_KEY = "fake-embedding-key"
_WORD = re.compile(r"\w+", re.UNICODE)


def fake_vector(text: str, dimension: int) -> np.ndarray[Any, Any]:
    """Hashed bag of words (weight 1) and character trigrams (weight 0.5), unit length."""
    vector = np.zeros(dimension, dtype=np.float64)
    if ZERO_VECTOR_MARKER in text:
        return vector
    features: list[tuple[str, float]] = []
    for word in _WORD.findall(text.lower()):
        features.append(("w:" + word, 1.0))
        padded = f"#{word}#"
        features.extend(("t:" + padded[i : i + 3], 0.5) for i in range(len(padded) - 2))
    for feature, weight in features:
        digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
        number = int.from_bytes(digest, "little")
        sign = 1.0 if number & 1 else -1.0
        vector[(number >> 1) % dimension] += sign * weight
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 0 else vector


@dataclass
class EmbeddingServerConfig:
    """How the fake behaves; tests may change it while it runs."""

    dimension: int = 1024
    api_key: str | None = FAKE_EMBEDDING_KEY
    max_inputs: int = 2048
    max_body_bytes: int = 8 * 1024 * 1024
    models: set[str] | None = None  # None: any model name is served
    shuffle: bool = False  # answer `data` out of order (clients must sort by index)


@dataclass
class EmbeddingRequestLog:
    """What the fake received (thread-safe)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    entries: list[dict[str, Any]] = field(default_factory=list)

    def add(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.entries.append(entry)

    def batch_sizes(self, status: int | None = None) -> list[int]:
        """Inputs per request, in arrival order (only answers with ``status`` if given)."""
        with self.lock:
            return [
                int(e["inputs"]) for e in self.entries if status is None or e["status"] == status
            ]

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()


def openai_error(status: int, message: str, kind: str, code: str | None) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": code}},
        status_code=status,
    )


def create_embeddings_app(config: EmbeddingServerConfig | None = None) -> FastAPI:
    """The fake; ``app.state`` holds ``config``, ``faults`` and ``log``."""
    config = config or EmbeddingServerConfig()
    app = FastAPI(title="Fake OpenAI-compatible embeddings")
    faults = Faults()
    log = EmbeddingRequestLog()
    app.state.config = config
    app.state.faults = faults
    app.state.log = log
    order = random.Random(1234)

    @app.middleware("http")
    async def gate(request: Request, call_next: Any) -> Response:
        fault = faults.pop(request)
        if fault is not None:
            if fault.delay_s > 0:
                await asyncio.sleep(fault.delay_s)
            injected = faults.response(fault)
            if injected is not None:
                log.add({"inputs": _count_inputs(await request.body()), "status": fault.status})
                return injected
        response: Response = await call_next(request)
        return response

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> Response:
        raw = await request.body()

        def refuse(status: int, message: str, kind: str, code: str | None) -> JSONResponse:
            log.add({"inputs": _count_inputs(raw), "status": status, "bytes": len(raw)})
            return openai_error(status, message, kind, code)

        if config.api_key is not None:
            header = request.headers.get("Authorization", "")
            if header != f"Bearer {config.api_key}":
                return refuse(
                    401,
                    "Incorrect API key provided. You can find your API key in your account "
                    "settings."
                    if header
                    else "You didn't provide an API key. Send it as 'Authorization: Bearer KEY'.",
                    "invalid_request_error",
                    "invalid_api_key",
                )
        if len(raw) > config.max_body_bytes:
            return refuse(
                413,
                f"Request body too large: {len(raw)} bytes, at most {config.max_body_bytes}.",
                "invalid_request_error",
                "request_too_large",
            )
        try:
            body = json.loads(raw)
        except ValueError:
            return refuse(400, "The body is not valid JSON.", "invalid_request_error", None)
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return refuse(400, "'model' is required.", "invalid_request_error", None)
        model = body["model"]
        if config.models is not None and model not in config.models:
            return refuse(
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                "invalid_request_error",
                "model_not_found",
            )
        texts = body.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if (
            not isinstance(texts, list)
            or not texts
            or not all(isinstance(t, str) and t for t in texts)
        ):
            return refuse(
                400,
                "'$.input' is invalid: a non-empty string or a list of non-empty strings.",
                "invalid_request_error",
                None,
            )
        if len(texts) > config.max_inputs:
            return refuse(
                400,
                f"Too many inputs: {len(texts)}; at most {config.max_inputs} per request.",
                "invalid_request_error",
                "too_many_inputs",
            )
        encoding = body.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            return refuse(
                400,
                f"'encoding_format' must be 'float' or 'base64', not {encoding!r}.",
                "invalid_request_error",
                None,
            )
        data: list[dict[str, Any]] = []
        for index, text in enumerate(texts):
            vector = fake_vector(text, config.dimension)
            embedding: Any = (
                base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
                if encoding == "base64"
                else [round(float(x), 7) for x in vector]
            )
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        if config.shuffle:
            order.shuffle(data)
        tokens = sum(len(_WORD.findall(t)) + 2 for t in texts)
        log.add(
            {"inputs": len(texts), "status": 200, "bytes": len(raw), "model": model, "texts": texts}
        )
        return JSONResponse(
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    # -- admin ---------------------------------------------------------------------------
    @app.post("/_admin/faults")
    async def admin_faults(request: Request) -> dict[str, bool]:
        spec = await request.json()
        status = int(spec.get("status", 429))
        kind = "rate_limit_exceeded" if status == 429 else "server_error"
        body = {"error": {"message": f"injected HTTP {status}", "type": kind, "code": None}}
        faults.add_from_spec(spec, body)
        return {"ok": True}

    @app.delete("/_admin/faults")
    def admin_clear_faults() -> dict[str, bool]:
        faults.clear()
        return {"ok": True}

    @app.get("/_admin/requests")
    def admin_requests() -> list[dict[str, Any]]:
        with log.lock:
            return list(log.entries)

    @app.delete("/_admin/requests")
    def admin_clear_requests() -> dict[str, bool]:
        log.clear()
        return {"ok": True}

    return app


def _count_inputs(raw: bytes) -> int:
    """Inputs in a request body, for the log (0 when unreadable)."""
    try:
        texts = json.loads(raw).get("input")
    except (ValueError, AttributeError):
        return 0
    if isinstance(texts, str):
        return 1
    return len(texts) if isinstance(texts, list) else 0
