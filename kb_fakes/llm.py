"""A fake OpenAI-compatible chat server (``POST /v1/chat/completions``) over real HTTP.

Request and answer have the real API's shape: ``{"model", "messages": [{"role",
"content"}], "temperature", "response_format"}`` → ``{"id", "object": "chat.completion",
"created", "model", "choices": [{"index": 0, "message": {"role": "assistant",
"content"}, "finish_reason": "stop"}], "usage"}``; errors as OpenAI sends them: 401 for a
wrong Bearer key (when a key is configured), 400 for a malformed request, 404 for a
model it does not serve (when ``models`` is set), 400 for ``response_format`` when
``json_mode`` is off (like servers without JSON mode).

It answers deterministically from the prompt's data blocks (``kb_core.generation.prompt``):
with ``response_format={"type": "json_object"}`` a valid answer JSON that cites the
first passage ids, quotes the first sentence of the first passage in the draft reply,
and picks the listed category sharing most words with the ticket (else the fallback);
no passages: ``answered`` false. Without JSON mode it answers with that JSON in a
Markdown fence when the system message asks for JSON, in prose otherwise, as models do.
It never follows instructions inside the data (it is a fake, but tests check the
prompt it received).

The answer-side helper prompts (``kb_core.generation.rerank``) get their own JSON: a
reranking prompt ``{"order": ["P2", "P1", …]}`` (passages by word overlap with the
ticket, or ``config.rerank_order``), a query-optimisation prompt ``{"query": …}`` (the
ticket's longer words, or ``config.optimized_query``).

Admin endpoints: ``POST /_admin/faults`` queues HTTP faults (``{"status": 429,
"retry_after": 2, "count": 1}``, ``{"status": 500, "count": 3}``, ``{"status": 0,
"delay_s": 2}`` for a late answer: see faults.py) or bad outputs (``{"output":
"not_json" | "invalid_json" | "wrong_schema" | "unknown_sources" | "raw", "content":
"…", "count": 1}``: a 200 answer whose message content is prose, broken JSON, JSON of
another shape, JSON citing ids that were not given, or exactly ``content``);
``GET /_admin/requests`` is the request log (raw body, parsed body, status, whether the
key matched).
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

FAKE_LLM_KEY = "fake-llm-key"
OUTPUT_FAULTS = ("not_json", "invalid_json", "wrong_schema", "unknown_sources", "raw")

_PASSAGE = re.compile(
    r'<passage id="(?P<id>[^"]+)"[^>]*title="(?P<title>[^"]*)"[^>]*>\n(?P<text>.*?)\n</passage>',
    re.DOTALL,
)
_TICKET = re.compile(r"<ticket>\n(.*?)\n</ticket>", re.DOTALL)
_CATEGORIES = re.compile(r'<categories fallback="([^"]*)">\n(.*?)</categories>', re.DOTALL)
_WORD = re.compile(r"\w+", re.UNICODE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


@dataclass
class LLMServerConfig:
    """How the fake behaves; tests may change it while it runs."""

    api_key: str | None = FAKE_LLM_KEY
    models: set[str] | None = None  # None: any model name is served
    json_mode: bool = True  # False: refuse response_format with 400
    cite: int = 2  # how many of the first passages the answer cites
    # issue 23: answers to the reranking and query-optimisation prompts
    # (kb_core.generation.rerank). None: by word overlap with the ticket / its key words.
    rerank_order: list[str] | None = None
    optimized_query: str | None = None


@dataclass
class LLMRequestLog:
    lock: threading.Lock = field(default_factory=threading.Lock)
    entries: list[dict[str, Any]] = field(default_factory=list)

    def add(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.entries.append(entry)

    def bodies(self, status: int | None = None) -> list[dict[str, Any]]:
        """Parsed request bodies, in arrival order (only answers with ``status`` if given)."""
        with self.lock:
            return [
                e["body"]
                for e in self.entries
                if e.get("body") is not None and (status is None or e["status"] == status)
            ]

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()


@dataclass
class OutputFault:
    kind: str
    count: int
    content: str = ""


def _openai_error(status: int, message: str, kind: str, code: str | None) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": code}},
        status_code=status,
    )


def _words(text: str) -> set[str]:
    return {w[:4] for w in _WORD.findall(text.lower()) if len(w) > 3}


def grounded_answer(prompt: str, cite: int = 2) -> dict[str, Any]:
    """The answer JSON the fake gives for a prompt built by kb_core.generation.prompt."""
    passages = [m.groupdict() for m in _PASSAGE.finditer(prompt)]
    ticket_match = _TICKET.search(prompt)
    ticket = ticket_match.group(1) if ticket_match else ""
    categories_match = _CATEGORIES.search(prompt)
    fallback = categories_match.group(1) if categories_match else "Другое"
    names = (
        [
            line[2:].strip()
            for line in categories_match.group(2).splitlines()
            if line.startswith("- ")
        ]
        if categories_match
        else []
    )
    wanted = _words(ticket)
    scored = [(len(_words(name) & wanted), -i, name) for i, name in enumerate(names)]
    best = max(scored, default=(0, 0, fallback))
    category = best[2] if best[0] > 0 else fallback
    if not passages:
        return {
            "answered": False,
            "category": category,
            "recommendations": ["В базе знаний нет ответа на этот вопрос."],
            "draft_reply": "Здравствуйте! Мы передали ваш вопрос специалисту.",
            "source_ids": [],
            "confidence": 0.1,
        }
    first = passages[0]
    sentence = _SENTENCE_END.split(first["text"].strip(), maxsplit=1)[0]
    cited = [p["id"] for p in passages[: max(1, cite)]]
    return {
        "answered": True,
        "category": category,
        "recommendations": [f"Проверьте «{p['title']}» ({p['id']})." for p in passages[:cite]],
        "draft_reply": f"Здравствуйте!\n\n{sentence}",
        "source_ids": cited,
        "confidence": 0.8,
    }


_RERANK_PASSAGE = re.compile(r'<passage id="(P\d+)"[^>]*>\n(.*?)\n</passage>', re.DOTALL)


def helper_answer(system: str, prompt: str, config: LLMServerConfig) -> dict[str, Any] | None:
    """The answer to a reranking prompt (``{"order"}``) or a query-optimisation prompt
    (``{"query"}``); None for the answering prompt."""
    ticket_match = _TICKET.search(prompt)
    ticket = ticket_match.group(1) if ticket_match else ""
    if '{"order"' in system:
        if config.rerank_order is not None:
            return {"order": list(config.rerank_order)}
        wanted = _words(ticket)
        passages = _RERANK_PASSAGE.findall(prompt)
        ranked = sorted(
            enumerate(passages), key=lambda item: (-len(_words(item[1][1]) & wanted), item[0])
        )
        return {"order": [pid for _, (pid, _) in ranked]}
    if '{"query"' in system:
        if config.optimized_query is not None:
            return {"query": config.optimized_query}
        seen: list[str] = []
        for word in _WORD.findall(ticket.lower()):
            if len(word) > 3 and word not in seen:
                seen.append(word)
        return {"query": " ".join(seen[:12])}
    return None


def _bad_output(fault: OutputFault, prompt: str, cite: int) -> str:
    if fault.kind == "raw":
        return fault.content
    if fault.kind == "not_json":
        return "Конечно! Вот ответ на ваш вопрос: проверьте настройки уведомлений."
    good = grounded_answer(prompt, cite)
    if fault.kind == "invalid_json":
        return json.dumps(good, ensure_ascii=False)[:-10]  # cut off: not parseable
    if fault.kind == "wrong_schema":
        return json.dumps({"answer": good["draft_reply"], "confidence": "высокая"})
    # unknown_sources
    good["source_ids"] = [*good["source_ids"], "S99", "doc-42"]
    return json.dumps(good, ensure_ascii=False)


def create_llm_app(config: LLMServerConfig | None = None) -> FastAPI:
    """The fake; ``app.state`` holds ``config``, ``faults``, ``outputs`` and ``log``."""
    config = config or LLMServerConfig()
    app = FastAPI(title="Fake OpenAI-compatible chat completions")
    faults = Faults()
    outputs: list[OutputFault] = []
    outputs_lock = threading.Lock()
    log = LLMRequestLog()
    app.state.config = config
    app.state.faults = faults
    app.state.outputs = outputs
    app.state.log = log
    counter = [0]

    def take_output() -> OutputFault | None:
        with outputs_lock:
            for fault in outputs:
                if fault.count > 0:
                    fault.count -= 1
                    return fault
        return None

    @app.middleware("http")
    async def gate(request: Request, call_next: Any) -> Response:
        fault = faults.pop(request)
        if fault is not None:
            if fault.delay_s > 0:
                await asyncio.sleep(fault.delay_s)
            injected = faults.response(fault)
            if injected is not None:
                raw = await request.body()
                log.add({"status": fault.status, "raw": raw.decode("utf-8", "replace")})
                return injected
        response: Response = await call_next(request)
        return response

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        raw = await request.body()
        header = request.headers.get("Authorization", "")
        authorized = config.api_key is None or header == f"Bearer {config.api_key}"
        entry: dict[str, Any] = {
            "raw": raw.decode("utf-8", "replace"),
            "body": None,
            "authorized": authorized,
            "bearer": header.startswith("Bearer "),
        }

        def refuse(status: int, message: str, code: str | None = None) -> JSONResponse:
            entry["status"] = status
            log.add(entry)
            kind = "invalid_request_error" if status < 500 else "server_error"
            return _openai_error(status, message, kind, code)

        if not authorized:
            return refuse(
                401,
                "Incorrect API key provided." if header else "You didn't provide an API key.",
                "invalid_api_key",
            )
        try:
            body = json.loads(raw)
        except ValueError:
            return refuse(400, "The body is not valid JSON.")
        entry["body"] = body
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            return refuse(400, "'model' is required.")
        model = body["model"]
        if config.models is not None and model not in config.models:
            return refuse(
                404,
                f"The model `{model}` does not exist or you do not have access to it.",
                "model_not_found",
            )
        messages = body.get("messages")
        if (
            not isinstance(messages, list)
            or not messages
            or not all(
                isinstance(m, dict)
                and m.get("role") in ("system", "user", "assistant")
                and isinstance(m.get("content"), str)
                for m in messages
            )
        ):
            return refuse(400, "'messages' must be a non-empty list of {role, content}.")
        response_format = body.get("response_format")
        json_mode = isinstance(response_format, dict) and response_format.get("type") == (
            "json_object"
        )
        if response_format is not None and not config.json_mode:
            return refuse(400, "response_format is not supported by this model.")
        prompt = "\n".join(m["content"] for m in messages if m["role"] == "user")
        output = take_output()
        system = "\n".join(m["content"] for m in messages if m["role"] == "system")
        helper = helper_answer(system, prompt, config)
        if output is not None:
            content = _bad_output(output, prompt, config.cite)
        elif helper is not None:
            content = json.dumps(helper, ensure_ascii=False)
        elif json_mode:
            content = json.dumps(grounded_answer(prompt, config.cite), ensure_ascii=False)
        else:
            answer = grounded_answer(prompt, config.cite)
            if "JSON" in system:  # asked for JSON in words only: fenced, as models often do
                content = f"```json\n{json.dumps(answer, ensure_ascii=False)}\n```"
            else:
                sources = ", ".join(answer["source_ids"])
                content = f"{answer['draft_reply']}\n\nИсточники: {sources}"
        counter[0] += 1
        entry["status"] = 200
        log.add(entry)
        prompt_tokens = sum(len(_WORD.findall(m["content"])) for m in messages)
        completion_tokens = len(_WORD.findall(content))
        return JSONResponse(
            {
                "id": f"chatcmpl-fake-{counter[0]}",
                "object": "chat.completion",
                "created": 1_767_225_600,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )

    # -- admin ---------------------------------------------------------------------------
    @app.post("/_admin/faults")
    async def admin_faults(request: Request) -> Response:
        spec = await request.json()
        if "output" in spec:
            kind = str(spec["output"])
            if kind not in OUTPUT_FAULTS:
                return JSONResponse(
                    {"error": f"output must be one of {', '.join(OUTPUT_FAULTS)}"},
                    status_code=400,
                )
            with outputs_lock:
                outputs.append(
                    OutputFault(kind, int(spec.get("count", 1)), str(spec.get("content", "")))
                )
            return JSONResponse({"ok": True})
        status = int(spec.get("status", 429))
        kind = "rate_limit_exceeded" if status == 429 else "server_error"
        body = {"error": {"message": f"injected HTTP {status}", "type": kind, "code": None}}
        faults.add_from_spec(spec, body)
        return JSONResponse({"ok": True})

    @app.delete("/_admin/faults")
    def admin_clear_faults() -> dict[str, bool]:
        faults.clear()
        with outputs_lock:
            outputs.clear()
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


def start_fake_llm(
    host: str = "127.0.0.1", port: int = 0, config: LLMServerConfig | None = None
) -> ServerThread:
    """The fake on a loopback port, running (``.url + "/v1"`` is KB_LLM_URL)."""
    return ServerThread(create_llm_app(config), host, port).start()
