"""A fake corporate-messenger incoming webhook (Mattermost/Slack style) over real HTTP.

``POST /hooks/{token}`` takes a JSON object and answers ``ok`` (text/plain), as
Mattermost and Slack do; a wrong token is 404, a body that is not a JSON object is 400,
and (with ``require_text``, the default, as both real services) so is one without a
non-empty ``text``. Every accepted body is kept.

Admin endpoints: ``GET /_admin/messages`` lists the accepted bodies in arrival order;
``GET /_admin/requests`` logs every attempt with its status (retries show up here);
``POST /_admin/faults`` queues failures (``{"status": 429, "retry_after": 1}``,
``{"status": 500, "count": 3}``, ``{"status": 0, "delay_s": 2}``: see faults.py);
``DELETE`` on each of them clears it.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from kb_fakes.faults import Faults
from kb_fakes.server import ServerThread

FAKE_WEBHOOK_TOKEN = "fake-webhook-token"


@dataclass
class MessengerConfig:
    """How the fake behaves; tests may change it while it runs."""

    token: str = FAKE_WEBHOOK_TOKEN
    require_text: bool = True


@dataclass
class Inbox:
    """Accepted bodies and the log of every request (thread-safe)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    messages: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)

    def log(self, status: int) -> None:
        with self.lock:
            self.requests.append({"status": status})

    def accept(self, body: dict[str, Any]) -> None:
        with self.lock:
            self.messages.append(body)
            self.requests.append({"status": 200})


def create_messenger_app(config: MessengerConfig | None = None) -> FastAPI:
    """The fake; ``app.state`` holds ``config``, ``faults`` and ``inbox``."""
    config = config or MessengerConfig()
    app = FastAPI(title="Fake messenger incoming webhook")
    faults = Faults()
    inbox = Inbox()
    app.state.config = config
    app.state.faults = faults
    app.state.inbox = inbox

    @app.middleware("http")
    async def gate(request: Request, call_next: Any) -> Response:
        fault = faults.pop(request)
        if fault is not None:
            if fault.delay_s > 0:
                await asyncio.sleep(fault.delay_s)
            injected = faults.response(fault)
            if injected is not None:
                inbox.log(fault.status)
                return injected
        response: Response = await call_next(request)
        return response

    def refuse(status: int, message: str) -> JSONResponse:
        inbox.log(status)
        return JSONResponse({"message": message}, status_code=status)

    @app.post("/hooks/{token}")
    async def hook(token: str, request: Request) -> Response:
        if token != config.token:
            return refuse(404, "Invalid webhook")
        try:
            body = json.loads(await request.body())
        except ValueError:
            return refuse(400, "Unable to parse incoming data")
        if not isinstance(body, dict):
            return refuse(400, "Unable to parse incoming data")
        if config.require_text and not (isinstance(body.get("text"), str) and body["text"]):
            return refuse(400, "No text specified")
        inbox.accept(body)
        return PlainTextResponse("ok")

    # -- admin ---------------------------------------------------------------------------
    @app.get("/_admin/messages")
    def admin_messages() -> list[dict[str, Any]]:
        with inbox.lock:
            return list(inbox.messages)

    @app.delete("/_admin/messages")
    def admin_clear_messages() -> dict[str, bool]:
        with inbox.lock:
            inbox.messages.clear()
            inbox.requests.clear()
        return {"ok": True}

    @app.get("/_admin/requests")
    def admin_requests() -> list[dict[str, Any]]:
        with inbox.lock:
            return list(inbox.requests)

    @app.post("/_admin/faults")
    async def admin_faults(request: Request) -> dict[str, bool]:
        spec = await request.json()
        faults.add_from_spec(spec, {"message": f"injected HTTP {spec.get('status', 429)}"})
        return {"ok": True}

    @app.delete("/_admin/faults")
    def admin_clear_faults() -> dict[str, bool]:
        faults.clear()
        return {"ok": True}

    return app


def webhook_url(base_url: str, token: str = FAKE_WEBHOOK_TOKEN) -> str:
    """The incoming-webhook URL of a fake at ``base_url`` (a KB_NOTIFY_WEBHOOK_URL)."""
    return f"{base_url.rstrip('/')}/hooks/{token}"


def start_fake_messenger(
    host: str = "127.0.0.1", port: int = 0, config: MessengerConfig | None = None
) -> ServerThread:
    """The fake on a loopback port, running (see :func:`webhook_url`)."""
    return ServerThread(create_messenger_app(config), host, port).start()
