"""A fake cross-encoder reranker over real HTTP, in both API shapes teams run.

- **Cohere / Jina** ``POST /v1/rerank``: ``{"model", "query", "documents": [str |
  {"text"}], "top_n"?, "return_documents"?}`` → ``{"id", "results": [{"index",
  "relevance_score", "document"?: {"text"}}], "meta": {"billed_units":
  {"search_units": 1}}}``, results best first, ``top_n`` of them. Errors as Cohere sends
  them: ``{"message": …}`` with 401 (wrong or missing Bearer key, when one is configured),
  400 (no query, no documents, top_n < 1), 404 (a model it does not serve).
- **Hugging Face TEI** ``POST /rerank``: ``{"query", "texts", "raw_scores"?, "truncate"?,
  "return_text"?}`` → ``[{"index", "score", "text"?}]`` best first. Errors as TEI sends
  them: ``{"error", "error_type"}`` with 422 (``Validation``: empty query or texts),
  413 (``Validation``: more texts than ``max_batch``), 401 without the key.

Scores are deterministic: the share of the query's word stems (first five letters) a
text holds — or, when
``config.scores`` maps a text's first words to a score, that score (tests dictate the
order). Faults (``POST /_admin/faults``: ``{"status": 503, "count": 2}``, a delay) and
the request log (``GET /_admin/requests``) work as in the other fakes.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from kb_fakes.faults import Faults
from kb_fakes.server import ServerThread

FAKE_RERANKER_KEY = "fake-reranker-key"
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass
class RerankerConfig:
    api_key: str | None = FAKE_RERANKER_KEY
    models: set[str] | None = None  # None: any model name is served
    max_batch: int = 32  # TEI's --max-client-batch-size
    scores: dict[str, float] = field(default_factory=dict)  # text prefix → score


def _stems(text: str) -> list[str]:
    return [w[:5] for w in _WORD.findall(text.lower()) if len(w) > 2]


def score(query: str, text: str, config: RerankerConfig) -> float:
    for prefix, value in config.scores.items():
        if text.startswith(prefix):
            return value
    wanted = _stems(query)
    found = set(_stems(text))
    if not wanted:
        return 0.0
    share = sum(1 for w in wanted if w in found) / len(wanted)
    return round(min(1.0, share), 6)


def create_reranker_app(config: RerankerConfig | None = None) -> FastAPI:
    config = config or RerankerConfig()
    app = FastAPI(title="Fake cross-encoder reranker (Cohere/Jina and TEI shapes)")
    faults = Faults()
    lock = threading.Lock()
    requests: list[dict[str, Any]] = []
    app.state.config = config
    app.state.faults = faults
    app.state.requests = requests
    counter = [0]

    def record(path: str, status: int, body: Any) -> None:
        with lock:
            requests.append({"path": path, "status": status, "body": body})

    @app.middleware("http")
    async def gate(request: Request, call_next: Any) -> Response:
        fault = faults.pop(request)
        if fault is not None:
            if fault.delay_s > 0:
                await asyncio.sleep(fault.delay_s)
            injected = faults.response(fault)
            if injected is not None:
                record(request.url.path, fault.status, None)
                return injected
        response: Response = await call_next(request)
        return response

    def authorized(request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        return config.api_key is None or header == f"Bearer {config.api_key}"

    async def body_of(request: Request) -> Any:
        try:
            return json.loads(await request.body())
        except ValueError:
            return None

    @app.post("/v1/rerank")
    async def cohere_rerank(request: Request) -> Response:
        body = await body_of(request)

        def refuse(status: int, message: str) -> JSONResponse:
            record("/v1/rerank", status, body)
            return JSONResponse({"message": message}, status_code=status)

        if not authorized(request):
            return refuse(401, "invalid api token")
        if not isinstance(body, dict):
            return refuse(400, "invalid request: body must be a JSON object")
        model = body.get("model")
        if config.models is not None and model not in config.models:
            return refuse(404, f"model '{model}' not found")
        query = body.get("query")
        documents = body.get("documents")
        if not isinstance(query, str) or not query.strip():
            return refuse(400, "invalid request: query must be a non-empty string")
        if not isinstance(documents, list) or not documents:
            return refuse(400, "invalid request: list of documents must not be empty")
        texts = [d.get("text") if isinstance(d, dict) else d for d in documents]
        if not all(isinstance(t, str) for t in texts):
            return refuse(400, "invalid request: documents must be strings or {text}")
        top_n = body.get("top_n", len(texts))
        if not isinstance(top_n, int) or top_n < 1:
            return refuse(400, "invalid request: top_n must be a positive integer")
        ranked = sorted(
            ((score(query, t, config), i) for i, t in enumerate(texts)), key=lambda x: (-x[0], x[1])
        )[:top_n]
        results: list[dict[str, Any]] = []
        for value, i in ranked:
            item: dict[str, Any] = {"index": i, "relevance_score": value}
            if body.get("return_documents"):
                item["document"] = {"text": texts[i]}
            results.append(item)
        counter[0] += 1
        record("/v1/rerank", 200, body)
        return JSONResponse(
            {
                "id": f"rerank-fake-{counter[0]}",
                "results": results,
                "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}},
            }
        )

    @app.post("/rerank")
    async def tei_rerank(request: Request) -> Response:
        body = await body_of(request)

        def refuse(status: int, message: str, kind: str = "Validation") -> JSONResponse:
            record("/rerank", status, body)
            return JSONResponse({"error": message, "error_type": kind}, status_code=status)

        if not authorized(request):
            return refuse(401, "Unauthorized", "Unauthorized")
        if not isinstance(body, dict):
            return refuse(422, "Failed to deserialize the JSON body into the target type")
        query, texts = body.get("query"), body.get("texts")
        if not isinstance(query, str) or not query:
            return refuse(422, "`query` cannot be empty")
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            return refuse(422, "`texts` cannot be empty")
        if len(texts) > config.max_batch:
            return refuse(
                413,
                f"batch size {len(texts)} > maximum allowed batch size {config.max_batch}",
            )
        ranked = sorted(
            ((score(query, t, config), i) for i, t in enumerate(texts)), key=lambda x: (-x[0], x[1])
        )
        out: list[dict[str, Any]] = []
        for value, i in ranked:
            item: dict[str, Any] = {"index": i, "score": value}
            if body.get("return_text"):
                item["text"] = texts[i]
            out.append(item)
        record("/rerank", 200, body)
        return JSONResponse(out)

    @app.post("/_admin/faults")
    async def admin_faults(request: Request) -> Response:
        spec = await request.json()
        status = int(spec.get("status", 503))
        faults.add_from_spec(spec, {"error": f"injected HTTP {status}", "message": "injected"})
        return JSONResponse({"ok": True})

    @app.get("/_admin/requests")
    def admin_requests() -> list[dict[str, Any]]:
        with lock:
            return list(requests)

    return app


def start_fake_reranker(
    host: str = "127.0.0.1", port: int = 0, config: RerankerConfig | None = None
) -> ServerThread:
    """The fake on a loopback port, running (``.url`` is KB_RERANKER_URL)."""
    return ServerThread(create_reranker_app(config), host, port).start()
