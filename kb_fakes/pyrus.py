"""A fake Pyrus API v4 over real HTTP, shaped like the samples in samples/pyrus.

Implements: ``POST /v4/auth`` (login + security key → token and ``api_url``), tasks
(``GET /v4/tasks/{id}``, ``POST /v4/tasks/{id}/comments`` with the real validation rules,
``POST /v4/tasks`` for form tasks),
form registers (``sort=id``, ``id=gt…``, ``modified_after``, ``item_count``), forms,
catalogs, members and bots, attachments (``GET /v4/files/download/{id}``);
``X-RateLimit-*`` headers on every answer and 429 ``too_many_requests`` past the limit;
tokens that expire on demand (401 ``expired_token``). Admin endpoints create tickets and
customer/agent comments, upload files, expire tokens, inject faults, list the comments
the bot posted, and send webhooks signed with ``X-Pyrus-Sig`` exactly as Pyrus does
(or replay the last one's very body, as Pyrus' retries do).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import hmac
import json
import secrets
import threading
import time
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from kb_fakes.faults import Faults

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "samples" / "pyrus"
BOT_LOGIN = "bot@00000000-0000-4000-8000-000000009000"
BOT_SECURITY_KEY = "fake-bot-security-key"


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def sign(body: bytes, security_key: str) -> str:
    """X-Pyrus-Sig: HMAC-SHA1 of the raw body with the bot's security key, hex."""
    return hmac.new(security_key.encode("utf-8"), body, hashlib.sha1).hexdigest()


class PyrusStore:
    """Tasks, forms, catalogs and people the fake serves; everything thread-safe."""

    def __init__(
        self,
        *,
        tasks: list[dict[str, Any]],
        forms: list[dict[str, Any]],
        catalogs: list[dict[str, Any]],
        members: list[dict[str, Any]],
        bot_id: int = 9000,
    ) -> None:
        self.tasks: dict[int, dict[str, Any]] = {int(t["id"]): t for t in tasks}
        self.forms = {int(f["id"]): f for f in forms}
        self.catalogs = {int(c["catalog_id"]): c for c in catalogs}
        self.members = members
        self.bot_id = bot_id
        self.posted: list[dict[str, Any]] = []  # comments posted through the API
        self.webhooks: list[dict[str, Any]] = []  # webhooks sent, with the answers
        self.created: list[dict[str, Any]] = []  # tasks created through the API
        self.files: dict[int, tuple[str, bytes]] = {}  # attachments: id -> (name, bytes)
        self.downloads: list[int] = []  # file ids downloaded through the API
        self.sent_bodies: dict[int, bytes] = {}  # the last webhook body sent per task
        self.lock = threading.RLock()
        self._next_task = max(self.tasks, default=300000) + 1

    @classmethod
    def from_samples(cls, directory: Path = SAMPLE_DIR) -> PyrusStore:
        def load(name: str) -> Any:
            return json.loads((directory / name).read_text("utf-8"))

        tasks: list[dict[str, Any]] = []
        for path in sorted((directory / "tickets").glob("*.json")):
            if not path.name.endswith(".pii.json"):
                tasks.extend(json.loads(path.read_text("utf-8")))
        if (directory / "corrections.json").exists():
            tasks.extend(load("corrections.json"))
        return cls(
            tasks=tasks,
            forms=load("forms.json"),
            catalogs=load("catalogs.json"),
            members=load("members.json"),
        )

    def person(self, person_id: int) -> dict[str, Any]:
        for member in self.members:
            if int(member["id"]) == person_id:
                return dict(member)
        return {"id": person_id, "type": "user"}

    def add_file(self, name: str, data: bytes) -> dict[str, Any]:
        """An uploaded file, described as tasks list their attachments."""
        with self.lock:
            file_id = 700000 + len(self.files) + 1
            self.files[file_id] = (name, data)
            return {
                "id": file_id,
                "name": name,
                "size": len(data),
                "md5": hashlib.md5(data, usedforsecurity=False).hexdigest().upper(),
                "url": f"https://pyrus.com/services/attachment?id={file_id}",
                "version": 1,
            }

    def next_comment_id(self, task: dict[str, Any]) -> int:
        ids = [int(c["id"]) for c in task.get("comments", [])]
        return max([*ids, int(task["id"]) * 100]) + 1

    def add_comment(
        self, task_id: int, author: dict[str, Any], body: dict[str, Any]
    ) -> dict[str, Any]:
        with self.lock:
            task = self.tasks[task_id]
            stamp = now_iso()
            comment: dict[str, Any] = {
                "id": self.next_comment_id(task),
                "create_date": stamp,
                "author": author,
            }
            for key in (
                "text",
                "formatted_text",
                "channel",
                "mentions",
                "field_updates",
                "action",
                "attachments",
                "edit_comment_id",
                "delete_comment_id",
            ):
                if key in body and body[key] is not None:
                    comment[key] = body[key]
            task.setdefault("comments", []).append(comment)
            for update in body.get("field_updates") or []:
                self._apply_field_update(task, update)
            if body.get("action") == "finished":
                task["is_closed"] = True
                task["close_date"] = stamp
            elif body.get("action") == "reopened":
                task["is_closed"] = False
                task.pop("close_date", None)
            task["last_modified_date"] = stamp
            return comment

    def form_field(self, form_id: int, update: dict[str, Any]) -> dict[str, Any] | None:
        """The form's definition of the field an update names (by id or code)."""
        for definition in self.forms.get(form_id, {}).get("fields", []):
            if definition.get("id") == update.get("id") or (
                update.get("code") and definition.get("code") == update.get("code")
            ):
                return definition
        return None

    def _catalog_value(self, definition: dict[str, Any], value: Any) -> Any:
        """A catalog field is written as ``{"item_id"}`` and read back, as Pyrus does, with
        the item's headers and values."""
        catalog = self.catalogs.get(int((definition.get("info") or {}).get("catalog_id") or 0))
        if catalog is None or not isinstance(value, dict) or "values" in value:
            return value
        item = next((i for i in catalog["items"] if i["item_id"] == value.get("item_id")), None)
        if item is None:
            return value
        headers = [h["name"] for h in catalog.get("catalog_headers", [])]
        return {"item_id": item["item_id"], "headers": headers, "values": list(item["values"])}

    def _apply_field_update(self, task: dict[str, Any], update: dict[str, Any]) -> None:
        definition = self.form_field(int(task.get("form_id") or 0), update) or {}
        if definition.get("type") == "catalog":
            update = {**update, "value": self._catalog_value(definition, update.get("value"))}
        value = update.get("value")
        if definition.get("type") == "multiple_choice" and isinstance(value, dict):
            # Pyrus takes choice ids and answers with the choices' names too.
            names = {
                o.get("choice_id"): o.get("choice_value")
                for o in (definition.get("info") or {}).get("options", [])
            }
            ids = list(value.get("choice_ids") or [])
            update = {
                **update,
                "value": {"choice_ids": ids, "choice_names": [names[i] for i in ids if i in names]},
            }
        for item in task.setdefault("fields", []):
            if item.get("id") == update.get("id") or (
                update.get("code") and item.get("code") == update.get("code")
            ):
                item["value"] = update.get("value")
                return
        # Tasks list a field once it has a value, with the form's name, type and code.
        item = {k: definition[k] for k in ("id", "type", "name", "code") if k in definition}
        task["fields"].append({**item, **dict(update)})

    def create_form_task(self, author: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        """``POST /tasks`` with a ``form_id``: a task of that form, filled from ``fields``."""
        with self.lock:
            form_id = int(body["form_id"])
            task_id = self._next_task
            self._next_task += 1
            stamp = now_iso()
            task: dict[str, Any] = {
                "id": task_id,
                "form_id": form_id,
                "create_date": stamp,
                "last_modified_date": stamp,
                "is_closed": False,
                "current_step": 1,
                "author": author,
                "fields": [],
                "comments": [],
            }
            self.tasks[task_id] = task
            for update in body.get("fields") or []:
                self._apply_field_update(task, update)
            if body.get("text") or body.get("formatted_text"):
                self.add_comment(task_id, author, body)["create_date"] = stamp
            task["last_modified_date"] = stamp
            return task

    def create_task(self, spec: dict[str, Any]) -> dict[str, Any]:
        """A new ticket, as if a customer submitted the form (first comment included)."""
        with self.lock:
            task_id = int(spec.get("id") or self._next_task)
            self._next_task = max(self._next_task, task_id + 1)
            stamp = now_iso()
            author = spec.get("author") or {"id": 599999, "type": "user"}
            task: dict[str, Any] = {
                "id": task_id,
                "form_id": int(spec.get("form_id", 321)),
                "create_date": stamp,
                "last_modified_date": stamp,
                "is_closed": False,
                "current_step": 1,
                "author": author,
                "fields": spec.get("fields", []),
                "comments": [],
            }
            if spec.get("subject"):
                task["subject"] = spec["subject"]
            self.tasks[task_id] = task
            text = spec.get("text")
            if text:
                first = self.add_comment(
                    task_id, author, {"text": text, "channel": spec.get("channel")}
                )
                first["create_date"] = stamp
            return task


def create_pyrus_app(
    store: PyrusStore,
    *,
    login: str = BOT_LOGIN,
    security_key: str = BOT_SECURITY_KEY,
    rate_limit: int = 5000,
    rate_window_s: float = 600.0,
) -> FastAPI:
    app = FastAPI(title="Fake Pyrus")
    faults = Faults()
    tokens: dict[str, bool] = {}  # token -> still valid
    window = {"start": time.monotonic(), "count": 0}
    app.state.store = store
    app.state.faults = faults

    @app.exception_handler(HTTPException)
    async def pyrus_error_shape(request: Request, exc: HTTPException) -> JSONResponse:
        # Pyrus answers errors as {"error": ..., "error_code": ...}, not FastAPI's {"detail"}.
        if isinstance(exc.detail, dict):
            return JSONResponse(exc.detail, status_code=exc.status_code)
        return JSONResponse(
            {"error": str(exc.detail), "error_code": "bad_request"}, status_code=exc.status_code
        )

    def api_base(request: Request) -> str:
        return str(request.base_url).rstrip("/") + "/v4/"

    def error(status: int, code: str, message: str) -> JSONResponse:
        return JSONResponse({"error": message, "error_code": code}, status_code=status)

    @app.middleware("http")
    async def gate(request: Request, call_next: Any) -> Response:
        path = request.url.path
        if path.startswith("/_admin"):
            admin_response: Response = await call_next(request)
            return admin_response
        elapsed = time.monotonic() - window["start"]
        if elapsed >= rate_window_s:
            window.update(start=time.monotonic(), count=0)
            elapsed = 0.0
        window["count"] += 1
        reset = max(1, int(rate_window_s - elapsed))
        headers = {
            "X-RateLimit-Limit": str(rate_limit),
            "X-RateLimit-Remaining": str(max(0, rate_limit - int(window["count"]))),
            "X-RateLimit-Reset": str(reset),
        }
        fault = faults.pop(request)
        response: Response | None = None
        if fault is not None:
            if fault.delay_s:
                await asyncio.sleep(fault.delay_s)
            if fault.lose_reply:  # done, but the answer is lost on the way back
                await call_next(request)
            response = faults.response(fault)
        if response is None and window["count"] > rate_limit:
            response = error(429, "too_many_requests", "Too many requests")
        if response is None and path != "/v4/auth":
            token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if token not in tokens:
                response = error(401, "invalid_token", "Access token is invalid")
            elif not tokens[token]:
                response = error(401, "expired_token", "Access token has expired")
        if response is None:
            response = await call_next(request)
        response.headers.update(headers)
        return response

    @app.post("/v4/auth")
    async def auth(request: Request) -> Response:
        body = await request.json()
        if body.get("login") != login or body.get("security_key") != security_key:
            return error(401, "invalid_credentials", "Login or security key is wrong")
        token = secrets.token_urlsafe(24)
        tokens[token] = True
        return JSONResponse(
            {
                "access_token": token,
                "api_url": api_base(request),
                "files_url": str(request.base_url).rstrip("/") + "/files/",
            }
        )

    def task_or_404(task_id: int) -> dict[str, Any]:
        task = store.tasks.get(task_id)
        if task is None:
            raise HTTPException(404, detail={"error": "Task not found", "error_code": "not_found"})
        return task

    @app.get("/v4/tasks/{task_id}")
    def get_task(task_id: int) -> dict[str, Any]:
        with store.lock:
            return {"task": copy.deepcopy(task_or_404(task_id))}

    @app.post("/v4/tasks/{task_id}/comments")
    async def post_comment(task_id: int, request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return error(400, "invalid_json", "Request body is not valid JSON")
        task_or_404(task_id)
        if body.get("text") is not None and body.get("formatted_text") is not None:
            return error(
                400,
                "both_text_and_formatted_text_specified",
                "Specify either text or formatted_text",
            )
        comment = store.add_comment(task_id, store.person(store.bot_id) | {"type": "bot"}, body)
        with store.lock:
            store.posted.append({"task_id": task_id, "comment": comment, "request": body})
            return JSONResponse({"task": copy.deepcopy(store.tasks[task_id])})

    @app.post("/v4/tasks")
    async def create_task(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return error(400, "invalid_json", "Request body is not valid JSON")
        if not isinstance(body, dict) or "form_id" not in body:
            # Simple (non-form) tasks are not used by the bot.
            return error(400, "form_id_required", "Only form tasks are supported by the fake")
        form_id = int(body["form_id"])
        if form_id not in store.forms:
            return error(404, "form_not_found", "Form not found")
        for update in body.get("fields") or []:
            if store.form_field(form_id, update) is None:
                return error(400, "field_not_found", f"Field {update.get('id')} not in the form")
        task = store.create_form_task(store.person(store.bot_id) | {"type": "bot"}, body)
        with store.lock:
            store.created.append({"task_id": task["id"], "request": body})
            return JSONResponse({"task": copy.deepcopy(task)})

    @app.api_route("/v4/forms/{form_id}/register", methods=["GET", "POST"])
    async def register(form_id: int, request: Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query_params)
        if request.method == "POST" and (await request.body()):
            params.update(await request.json())
        if form_id not in store.forms:
            raise HTTPException(404, detail={"error": "Form not found", "error_code": "not_found"})
        after_id = 0
        if str(params.get("id", "")).startswith("gt"):
            after_id = int(str(params["id"])[2:])
        modified_after = params.get("modified_after")
        include_archived = params.get("include_archived") == "y"
        limit = int(params.get("item_count", 20000))
        with store.lock:
            selected = []
            for task in sorted(store.tasks.values(), key=lambda t: int(t["id"])):
                if task.get("form_id") != form_id or int(task["id"]) <= after_id:
                    continue
                if modified_after and task.get("last_modified_date", "") < modified_after:
                    continue
                if task.get("archived") and not include_archived:
                    continue
                summary = {k: v for k, v in task.items() if k != "comments"}
                selected.append(copy.deepcopy(summary))
                if len(selected) >= limit:
                    break
        return {"tasks": selected}

    @app.get("/v4/files/download/{file_id}")
    def download_file(file_id: int) -> Response:
        with store.lock:
            found = store.files.get(file_id)
            if found is not None:
                store.downloads.append(file_id)
        if found is None:
            raise HTTPException(404, detail={"error": "File not found", "error_code": "not_found"})
        name, data = found
        quoted = urllib.parse.quote(name)
        return Response(
            data,
            media_type="application/octet-stream",
            headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quoted}"},
        )

    @app.get("/v4/forms")
    def forms() -> dict[str, Any]:
        return {"forms": list(store.forms.values())}

    @app.get("/v4/forms/{form_id}")
    def form(form_id: int) -> dict[str, Any]:
        if form_id not in store.forms:
            raise HTTPException(404, detail={"error": "Form not found", "error_code": "not_found"})
        return store.forms[form_id]

    @app.get("/v4/catalogs/{catalog_id}")
    def catalog(catalog_id: int) -> dict[str, Any]:
        if catalog_id not in store.catalogs:
            raise HTTPException(
                404, detail={"error": "Catalog not found", "error_code": "not_found"}
            )
        return store.catalogs[catalog_id]

    @app.get("/v4/members")
    def members() -> dict[str, Any]:
        # The real API's member shape (see samples/pyrus/04-member*.json): fields the
        # sample file leaves out are present, empty, as Pyrus sends them.
        shape = {
            "email": "",
            "type": "user",
            "external_id": None,
            "department_id": None,
            "department_name": "",
            "banned": False,
            "position": "",
            "skype": "",
            "phone": "",
        }
        return {"members": [shape | m for m in store.members if m.get("type") != "bot"]}

    @app.get("/v4/bots")
    def bots() -> dict[str, Any]:
        return {"bots": [m for m in store.members if m.get("type") == "bot"]}

    # -- admin ---------------------------------------------------------------------------
    @app.post("/_admin/expire-tokens")
    def expire_tokens() -> dict[str, int]:
        for token in tokens:
            tokens[token] = False
        return {"expired": len(tokens)}

    @app.post("/_admin/faults")
    async def admin_faults(request: Request) -> dict[str, bool]:
        spec = await request.json()
        # Pyrus error shape, so clients see the error_code they would in production.
        body = {"error": "injected", "error_code": spec.get("error_code", "injected")}
        faults.add_from_spec(spec, body)
        return {"ok": True}

    @app.get("/_admin/comments")
    def admin_comments(task_id: int | None = None) -> list[dict[str, Any]]:
        with store.lock:
            return [p for p in store.posted if task_id is None or p["task_id"] == task_id]

    @app.get("/_admin/created")
    def admin_created() -> list[dict[str, Any]]:
        with store.lock:
            return list(store.created)

    @app.post("/_admin/files")
    async def admin_file(request: Request) -> dict[str, Any]:
        """Upload a file as a person would: ``{"name", "content_base64"}`` → attachment."""
        spec = await request.json()
        return store.add_file(str(spec["name"]), base64.b64decode(spec["content_base64"]))

    @app.post("/_admin/tasks")
    async def admin_create_task(request: Request) -> dict[str, Any]:
        return {"task": store.create_task(await request.json())}

    @app.post("/_admin/tasks/{task_id}/comments")
    async def admin_comment(task_id: int, request: Request) -> dict[str, Any]:
        """A comment by a person (customer or agent), not through the bot's API."""
        body = await request.json()
        task_or_404(task_id)
        author = body.pop("author", None) or store.tasks[task_id]["author"]
        return {"comment": store.add_comment(task_id, author, body)}

    @app.post("/_admin/webhook")
    async def admin_webhook(request: Request) -> dict[str, Any]:
        """Send the bot's webhook for a task to ``url``, signed like Pyrus does."""
        spec = await request.json()
        task = copy.deepcopy(task_or_404(int(spec["task_id"])))
        payload = {
            "event": spec.get("event", "comment"),
            "access_token": secrets.token_urlsafe(16),
            "task_id": task["id"],
            "user_id": store.bot_id,
            "bot_settings": json.dumps(spec.get("bot_settings", {})),
            "task": task,
        }
        raw = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        with store.lock:
            # Pyrus retries a webhook with the very same body ("replay": true).
            if spec.get("replay") and task["id"] in store.sent_bodies:
                raw = store.sent_bodies[task["id"]]
            store.sent_bodies[task["id"]] = raw
        signature = spec.get("signature") or sign(raw, security_key)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Pyrus-Bot-4",
            "X-Pyrus-Sig": signature,
            "X-Pyrus-Retry": spec.get("retry", "1/3"),
        }
        async with httpx.AsyncClient(timeout=60.0) as client:
            answer = await client.post(spec["url"], content=raw, headers=headers)
        record = {"task_id": task["id"], "status": answer.status_code, "body": answer.text}
        with store.lock:
            store.webhooks.append(record)
        return record

    return app
