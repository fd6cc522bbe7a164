"""A fake Confluence (REST API shapes of Data Center / Cloud) over real HTTP.

Implements what the connector uses: ``GET /rest/api/content`` (space listing with
``expand``, ``start``/``limit`` paging, a server-side cap on ``limit``, ``_links.next``)
and ``GET /rest/api/content/search`` (the CQL subset ``space = "X"`` / ``space in
(...)``, ``type = page``, ``lastmodified >= "yyyy-MM-dd HH:mm"``, ``ORDER BY
lastmodified``), and view restrictions: ``expand=restrictions.read.restrictions.group``
on content and ``GET /rest/api/content/{id}/restriction/byOperation/read``. Auth: Bearer
token (Data Center) or Basic email:token (Cloud).
Admin endpoints edit pages, inject faults (429 with Retry-After, 503) and count calls.
"""

from __future__ import annotations

import base64
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from kb_fakes.faults import Faults

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "samples" / "confluence"


@dataclass
class FakeAttachment:
    id: str
    filename: str
    data: bytes
    media_type: str = "application/octet-stream"
    version: int = 1


@dataclass
class FakeComment:
    id: str
    body: str
    location: str = "footer"  # footer | inline
    resolved: bool = False


@dataclass
class FakePage:
    id: str
    space: str
    title: str
    body: str
    version: int = 1
    last_modified: datetime = field(default_factory=lambda: datetime.now(UTC))
    parent_id: str | None = None
    labels: list[str] = field(default_factory=list)
    # View restrictions (Confluence's "read" operation): None means none. Changing them
    # creates no new page version, as in Confluence.
    read_groups: list[str] | None = None
    read_users: list[str] = field(default_factory=list)
    attachments: list[FakeAttachment] = field(default_factory=list)
    comments: list[FakeComment] = field(default_factory=list)


def restriction_json(page: FakePage) -> dict[str, Any]:
    """The ``read`` restriction as Confluence returns it (byOperation and expand)."""
    groups = [{"type": "group", "name": name} for name in page.read_groups or []]
    users = [{"type": "known", "username": name} for name in page.read_users]
    return {
        "operation": "read",
        "restrictions": {
            "user": {"results": users, "start": 0, "limit": 200, "size": len(users)},
            "group": {"results": groups, "start": 0, "limit": 200, "size": len(groups)},
        },
        "_links": {"self": f"/rest/api/content/{page.id}/restriction/byOperation/read"},
    }


class ConfluenceStore:
    """The pages the fake serves, mutable by tests (thread-safe)."""

    def __init__(self, pages: list[FakePage] | None = None) -> None:
        self.pages: dict[str, FakePage] = {p.id: p for p in pages or []}
        self.lock = threading.Lock()
        self.requests: dict[str, int] = {}

    @classmethod
    def from_samples(cls, directory: Path = SAMPLE_DIR) -> ConfluenceStore:
        manifest = json.loads((directory / "pages.json").read_text("utf-8"))
        pages = [
            FakePage(
                id=str(item["id"]),
                space=item["space"],
                title=item["title"],
                body=(directory / item["file"]).read_text("utf-8"),
                version=int(item.get("version", 1)),
                last_modified=datetime.fromisoformat(item["last_modified"].replace("Z", "+00:00")),
                parent_id=item.get("parent_id"),
                labels=list(item.get("labels", [])),
                read_groups=item.get("read_groups"),
            )
            for item in manifest
        ]
        store = cls(pages)
        attachments = directory / "attachments.json"
        if attachments.exists():
            store.seed_attachments(json.loads(attachments.read_text("utf-8")))
        return store

    def seed_attachments(self, manifest: list[dict[str, Any]]) -> None:
        """Sample attachments described as text: PDF and DOCX are built, not committed."""
        from kb_fakes.documents import docx_bytes, pdf_bytes

        for item in manifest:
            if "pdf" in item:
                data = pdf_bytes(list(item["pdf"]))
            elif "docx" in item:
                spec = item["docx"]
                data = docx_bytes(spec["title"], spec["paragraphs"], spec.get("table"))
            else:
                data = str(item["text"]).encode("utf-8")
            self.attach(item["page_id"], item["filename"], data, item.get("media_type", ""))

    def ancestors(self, page: FakePage) -> list[FakePage]:
        chain: list[FakePage] = []
        parent = self.pages.get(page.parent_id or "")
        while parent is not None and parent not in chain:
            chain.insert(0, parent)
            parent = self.pages.get(parent.parent_id or "")
        return chain

    def upsert(self, page_id: str, **changes: Any) -> FakePage:
        """Create or edit a page: a new version, modified now."""
        with self.lock:
            page = self.pages.get(page_id)
            if page is None:
                page = FakePage(id=page_id, space=changes.pop("space"), title="", body="")
                page.version = 0
                self.pages[page_id] = page
            for key, value in changes.items():
                setattr(page, key, value)
            page.version += 1
            page.last_modified = changes.get("last_modified") or datetime.now(UTC)
            return page

    def delete(self, page_id: str) -> bool:
        with self.lock:
            return self.pages.pop(page_id, None) is not None

    def attach(
        self, page_id: str, filename: str, data: bytes, media_type: str = ""
    ) -> FakeAttachment:
        """Add (or replace: a new version of) a page's attachment. As in Confluence, the
        page's own version and modification time stay as they are."""
        with self.lock:
            page = self.pages[page_id]
            for item in page.attachments:
                if item.filename == filename:
                    item.data, item.version = data, item.version + 1
                    return item
            number = sum(len(p.attachments) for p in self.pages.values())
            item = FakeAttachment(
                id=f"att{page_id}{number:03d}",
                filename=filename,
                data=data,
                media_type=media_type or "application/octet-stream",
            )
            page.attachments.append(item)
            return item

    def comment(
        self, page_id: str, body: str, location: str = "footer", resolved: bool = False
    ) -> FakeComment:
        with self.lock:
            page = self.pages[page_id]
            number = sum(len(p.comments) for p in self.pages.values())
            item = FakeComment(f"c{page_id}{number:03d}", body, location, resolved)
            page.comments.append(item)
            return item


_CQL_SPACE_EQ = re.compile(r'space\s*=\s*"?([\w-]+)"?', re.IGNORECASE)
_CQL_SPACE_IN = re.compile(r"space\s+in\s*\(([^)]*)\)", re.IGNORECASE)
_CQL_MODIFIED = re.compile(r'lastmodified\s*>=?\s*"([^"]+)"', re.IGNORECASE)
_CQL_TYPE = re.compile(r'type\s*=\s*"?(\w+)"?', re.IGNORECASE)


def parse_cql(cql: str) -> tuple[set[str] | None, datetime | None, str | None]:
    """(spaces, modified-since, type) of the CQL subset the connector sends."""
    spaces: set[str] | None = None
    if match := _CQL_SPACE_IN.search(cql):
        spaces = {s.strip().strip("\"'") for s in match[1].split(",") if s.strip()}
    elif match := _CQL_SPACE_EQ.search(cql):
        spaces = {match[1]}
    since = None
    if match := _CQL_MODIFIED.search(cql):
        text = match[1]
        for fmt in ("%Y-%m-%d %H:%M", "%Y-%m-%d", "%Y/%m/%d %H:%M", "%Y/%m/%d"):
            try:
                since = datetime.strptime(text, fmt).replace(tzinfo=UTC)
                break
            except ValueError:
                continue
        else:
            raise HTTPException(400, detail=f"cannot parse lastmodified date {text!r}")
    kind = match[1] if (match := _CQL_TYPE.search(cql)) else None
    return spaces, since, kind


def create_confluence_app(
    store: ConfluenceStore,
    *,
    token: str = "fake-confluence-token",
    email: str | None = None,
    max_limit: int = 50,
) -> FastAPI:
    """The fake. With ``email`` it expects Cloud's Basic auth, otherwise a Bearer PAT."""
    app = FastAPI(title="Fake Confluence")
    faults = Faults()
    app.state.store = store
    app.state.faults = faults

    def authorised(request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        if email is not None:
            expected = base64.b64encode(f"{email}:{token}".encode()).decode()
            return header == f"Basic {expected}"
        return header == f"Bearer {token}"

    @app.middleware("http")
    async def gate(request: Request, call_next: Any) -> Response:
        path = request.url.path
        store.requests[path] = store.requests.get(path, 0) + 1
        if not path.startswith("/_admin") and not authorised(request):
            return JSONResponse(
                {"statusCode": 401, "message": "Authentication required"}, status_code=401
            )
        injected = faults.take(request)
        if injected is not None:
            return injected
        response: Response = await call_next(request)
        return response

    def base_url(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    def page_json(page: FakePage, expand: set[str]) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": page.id,
            "type": "page",
            "status": "current",
            "title": page.title,
            "_links": {
                "webui": f"/display/{page.space}/{quote(page.title.replace(' ', '+'))}",
                "self": f"/rest/api/content/{page.id}",
            },
        }
        if "version" in expand:
            data["version"] = {
                "number": page.version,
                "when": page.last_modified.isoformat(timespec="milliseconds").replace(
                    "+00:00", "Z"
                ),
            }
        if "body.storage" in expand:
            data["body"] = {"storage": {"value": page.body, "representation": "storage"}}
        if "ancestors" in expand:
            data["ancestors"] = [
                {"id": a.id, "type": "page", "title": a.title} for a in store.ancestors(page)
            ]
        if "space" in expand:
            data["space"] = {"key": page.space}
        if expand & {"restrictions.read.restrictions.group", "restrictions.read.restrictions.user"}:
            data["restrictions"] = {"read": restriction_json(page)}
        if "metadata.labels" in expand:
            data["metadata"] = {
                "labels": {"results": [{"prefix": "global", "name": n} for n in page.labels]}
            }
        return data

    def listing(
        request: Request, pages: list[FakePage], start: int, limit: int, expand: str
    ) -> dict[str, Any]:
        limit = max(1, min(limit, max_limit))  # real servers cap `limit` too
        window = pages[start : start + limit]
        expanded = {part.strip() for part in expand.split(",") if part.strip()}
        links: dict[str, Any] = {"base": base_url(request), "context": ""}
        if start + limit < len(pages):
            params = dict(request.query_params)
            params.update(start=str(start + limit), limit=str(limit))
            links["next"] = f"{request.url.path}?{urlencode(params)}"
        return {
            "results": [page_json(p, expanded) for p in window],
            "start": start,
            "limit": limit,
            "size": len(window),
            "_links": links,
        }

    @app.get("/rest/api/content")
    def content(
        request: Request,
        spaceKey: str | None = None,
        type: str = "page",
        status: str = "current",
        expand: str = "",
        start: int = 0,
        limit: int = 25,
    ) -> dict[str, Any]:
        with store.lock:
            pages = sorted(
                (p for p in store.pages.values() if spaceKey is None or p.space == spaceKey),
                key=lambda p: int(p.id) if p.id.isdigit() else p.id,
            )
        if type != "page" or status != "current":
            pages = []
        return listing(request, pages, start, limit, expand)

    @app.get("/rest/api/content/search")
    def search(
        request: Request, cql: str, expand: str = "", start: int = 0, limit: int = 25
    ) -> dict[str, Any]:
        spaces, since, kind = parse_cql(cql)
        with store.lock:
            pages = [
                p
                for p in store.pages.values()
                if (spaces is None or p.space in spaces)
                and (since is None or p.last_modified >= since)
                and kind in (None, "page")
            ]
        pages.sort(key=lambda p: (p.last_modified, p.id))
        return listing(request, pages, start, limit, expand)

    @app.get("/rest/api/content/{page_id}/restriction/byOperation/read")
    def read_restriction(page_id: str) -> dict[str, Any]:
        page = store.pages.get(page_id)
        if page is None:
            raise HTTPException(404, detail=f"No content found with id: {page_id}")
        return restriction_json(page)

    # -- admin ---------------------------------------------------------------------------
    @app.put("/_admin/pages/{page_id}/restrictions")
    async def admin_restrict(page_id: str, request: Request) -> dict[str, Any]:
        body = await request.json()
        with store.lock:
            page = store.pages.get(page_id)
            if page is None:
                raise HTTPException(404, detail="no such page")
            page.read_groups = body.get("groups")
            page.read_users = list(body.get("users") or [])
        return {"id": page_id, "version": page.version}

    @app.get("/rest/api/content/{page_id}")
    def one_page(page_id: str, expand: str = "") -> dict[str, Any]:
        with store.lock:
            page = store.pages.get(page_id)
            if page is None:
                raise HTTPException(404, detail=f"No content with id {page_id}")
            expanded = {part.strip() for part in expand.split(",") if part.strip()}
            return page_json(page, expanded)

    def page_or_404(page_id: str) -> FakePage:
        page = store.pages.get(page_id)
        if page is None:
            raise HTTPException(404, detail=f"No content with id {page_id}")
        return page

    @app.get("/rest/api/content/{page_id}/child/attachment")
    def attachments(
        request: Request, page_id: str, start: int = 0, limit: int = 25
    ) -> dict[str, Any]:
        with store.lock:
            page = page_or_404(page_id)
            items = list(page.attachments)
        limit = max(1, min(limit, max_limit))
        window = items[start : start + limit]
        links: dict[str, Any] = {"base": base_url(request), "context": ""}
        if start + limit < len(items):
            links["next"] = (
                f"{request.url.path}?{urlencode({'start': start + limit, 'limit': limit})}"
            )
        results = [
            {
                "id": a.id,
                "type": "attachment",
                "title": a.filename,
                "version": {"number": a.version},
                "extensions": {"mediaType": a.media_type, "fileSize": len(a.data)},
                "_links": {
                    "download": f"/download/attachments/{page_id}/{quote(a.filename)}"
                    f"?version={a.version}&api=v2"
                },
            }
            for a in window
        ]
        return {
            "results": results,
            "start": start,
            "limit": limit,
            "size": len(window),
            "_links": links,
        }

    @app.get("/download/attachments/{page_id}/{filename}")
    def download(page_id: str, filename: str) -> Response:
        with store.lock:
            page = page_or_404(page_id)
            for item in page.attachments:
                if item.filename == filename:
                    return Response(item.data, media_type=item.media_type)
        raise HTTPException(404, detail="attachment not found")

    @app.get("/rest/api/content/{page_id}/child/comment")
    def comments(
        request: Request,
        page_id: str,
        expand: str = "",
        location: list[str] | None = None,
        depth: str = "",
        start: int = 0,
        limit: int = 25,
    ) -> dict[str, Any]:
        wanted = set(location or ["footer", "inline", "resolved"])
        with store.lock:
            page = page_or_404(page_id)
            items = [
                c
                for c in page.comments
                if c.location in wanted or (c.resolved and "resolved" in wanted)
            ]
        limit = max(1, min(limit, max_limit))
        window = items[start : start + limit]
        links: dict[str, Any] = {"base": base_url(request), "context": ""}
        if start + limit < len(items):
            params = dict(request.query_params)
            params.update(start=str(start + limit), limit=str(limit))
            links["next"] = f"{request.url.path}?{urlencode(params)}"
        results = [
            {
                "id": c.id,
                "type": "comment",
                "body": {"storage": {"value": c.body, "representation": "storage"}},
                "extensions": {
                    "location": c.location,
                    "resolution": {"status": "resolved" if c.resolved else "open"}
                    if c.location == "inline"
                    else None,
                },
            }
            for c in window
        ]
        return {
            "results": results,
            "start": start,
            "limit": limit,
            "size": len(window),
            "_links": links,
        }

    # -- admin ---------------------------------------------------------------------------
    @app.put("/_admin/pages/{page_id}/attachments/{filename}")
    async def admin_attach(page_id: str, filename: str, request: Request) -> dict[str, Any]:
        if page_id not in store.pages:
            raise HTTPException(404, detail="no such page")
        item = store.attach(
            page_id, filename, await request.body(), request.headers.get("content-type", "")
        )
        return {"id": item.id, "version": item.version}

    @app.post("/_admin/pages/{page_id}/comments")
    async def admin_comment(page_id: str, request: Request) -> dict[str, Any]:
        if page_id not in store.pages:
            raise HTTPException(404, detail="no such page")
        spec = await request.json()
        item = store.comment(
            page_id, str(spec["body"]), spec.get("location", "footer"), bool(spec.get("resolved"))
        )
        return {"id": item.id}

    @app.put("/_admin/pages/{page_id}")
    async def admin_upsert(page_id: str, request: Request) -> dict[str, Any]:
        changes = await request.json()
        if page_id not in store.pages and "space" not in changes:
            raise HTTPException(400, detail="a new page needs a space")
        page = store.upsert(page_id, **changes)
        return {"id": page.id, "version": page.version}

    @app.delete("/_admin/pages/{page_id}")
    def admin_delete(page_id: str) -> dict[str, bool]:
        return {"deleted": store.delete(page_id)}

    @app.post("/_admin/faults")
    async def admin_faults(request: Request) -> dict[str, Any]:
        faults.add_from_spec(await request.json())
        return {"ok": True}

    @app.get("/_admin/stats")
    def admin_stats() -> dict[str, Any]:
        return {"pages": len(store.pages), "requests": store.requests, "faults": faults.injected}

    return app
