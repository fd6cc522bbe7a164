"""A fake Jira (REST API v2 / v3 shapes of Server, Data Center and Cloud) over real HTTP.

Implements what the connector uses: ``GET /rest/api/{2,3}/search`` (``startAt`` /
``maxResults`` paging with a server-side cap and ``total``; the JQL subset ``project =
X`` / ``project in (...)``, ``resolution is [not] EMPTY``, ``updated >= "yyyy/MM/dd
HH:mm"`` in the user's time zone, ``ORDER BY updated ASC|DESC``; anything else is a 400
with Jira's ``errorMessages``), ``GET /rest/api/{v}/issue/{key}/comment`` (paged; search
results carry only the first few comments, as real Jira may) and ``GET
/rest/api/{v}/myself`` (the time zone JQL dates are read in), and a project's read access:
``GET /rest/api/{v}/project/{key}/permissionscheme?expand=...`` (the assigned permission
scheme with its grants, each ``{"id", "holder": {"type", "parameter", "value"},
"permission"}``) and ``GET /rest/api/{v}/project/{key}/role/{id}`` (a project role with
its ``actors``). Both need project administration in real Jira: ``permissions_denied``
answers them with 403 as for a reader account without it. Auth: Bearer PAT (Server /
DC) or Basic email:token (Cloud). A rate limit (requests per second, 429 with
``Retry-After``) and injected faults exercise the client's back-off.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response

from kb_fakes.faults import Faults

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "samples" / "jira"
TOKEN = "fake-jira-token"
USER_ZONE = "Europe/Moscow"
SEARCH_COMMENTS = 3  # comments embedded in a search result; the rest need the comment API


def jira_time(value: datetime) -> str:
    """Jira's timestamp format: milliseconds and an offset without a colon."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


@dataclass
class FakeIssue:
    key: str
    summary: str
    description: Any
    resolution: str | None
    reporter: dict[str, Any]
    issue_type: str = "Обращение"
    status: str = "Решена"
    updated: datetime = field(default_factory=lambda: datetime.now(UTC))
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    labels: list[str] = field(default_factory=list)
    components: list[str] = field(default_factory=list)
    comments: list[dict[str, Any]] = field(default_factory=list)

    @property
    def project(self) -> str:
        return self.key.rsplit("-", 1)[0]


class JiraStore:
    """The issues the fake serves, mutable by tests (thread-safe)."""

    def __init__(self, issues: list[FakeIssue] | None = None) -> None:
        self.issues: dict[str, FakeIssue] = {i.key: i for i in issues or []}
        self.lock = threading.Lock()
        self.requests: dict[str, int] = {}
        # project key -> the BROWSE_PROJECTS grants of its permission scheme, as holders
        # ({"type": "group" | "projectRole" | "applicationRole" | "anyone" | ...,
        # "parameter": ...}); a project not listed has the default scheme: any logged-in
        # user (applicationRole) may browse.
        self.browse_grants: dict[str, list[dict[str, Any]]] = {}
        # (project key, role id) -> the role's group actors.
        self.role_groups: dict[tuple[str, int], list[str]] = {}
        self.permissions_denied = False

    def restrict(self, project: str, groups: list[str], role_groups: Sequence[str] = ()) -> None:
        """Let only ``groups`` (and the members of a project role holding
        ``role_groups``) browse ``project``."""
        with self.lock:
            grants: list[dict[str, Any]] = [
                {"type": "group", "parameter": g, "value": f"gid-{g}"} for g in groups
            ]
            if role_groups:
                self.role_groups[(project, 10002)] = list(role_groups)
                grants.append({"type": "projectRole", "parameter": "10002", "value": "10002"})
            self.browse_grants[project] = grants

    @classmethod
    def from_samples(cls, directory: Path = SAMPLE_DIR) -> JiraStore:
        data = json.loads((directory / "issues.json").read_text("utf-8"))
        users = data["users"]
        issues = []
        for item in data["issues"]:
            comments = [
                {
                    "id": str(10000 + n),
                    "author": users[c["author"]],
                    "body": c["body"],
                    "created": c["created"],
                }
                for n, c in enumerate(item.get("comments", []), start=len(issues) * 100)
            ]
            issues.append(
                FakeIssue(
                    key=item["key"],
                    summary=item["summary"],
                    description=item.get("description"),
                    resolution=item.get("resolution"),
                    reporter=users[item["reporter"]],
                    issue_type=item.get("issue_type", "Обращение"),
                    status=item.get("status", "Решена" if item.get("resolution") else "Открыта"),
                    updated=datetime.fromisoformat(item["updated"].replace("Z", "+00:00")),
                    created=datetime.fromisoformat(item["created"].replace("Z", "+00:00")),
                    labels=list(item.get("labels", [])),
                    components=list(item.get("components", [])),
                    comments=comments,
                )
            )
        return cls(issues)

    def edit(self, key: str, **changes: Any) -> FakeIssue:
        """Change an issue; it is updated now (or at ``updated``)."""
        with self.lock:
            issue = self.issues[key]
            for name, value in changes.items():
                setattr(issue, name, value)
            if "updated" not in changes:
                issue.updated = datetime.now(UTC)
            return issue

    def add_comment(self, key: str, author: dict[str, Any], body: Any) -> None:
        with self.lock:
            issue = self.issues[key]
            now = datetime.now(UTC)
            issue.comments.append(
                {
                    "id": str(90000 + sum(len(i.comments) for i in self.issues.values())),
                    "author": author,
                    "body": body,
                    "created": jira_time(now),
                }
            )
            issue.updated = now

    def add(self, issue: FakeIssue) -> None:
        with self.lock:
            self.issues[issue.key] = issue

    def delete(self, key: str) -> bool:
        with self.lock:
            return self.issues.pop(key, None) is not None


_PROJECT_IN = re.compile(r"^project\s+in\s*\(([^)]*)\)$", re.I)
_PROJECT_EQ = re.compile(r'^project\s*=\s*"?([\w-]+)"?$', re.I)
_RESOLUTION = re.compile(r"^resolution\s+is\s+(not\s+)?empty$", re.I)
_UPDATED = re.compile(r'^updated\s*>=\s*"([^"]+)"$', re.I)
_ORDER = re.compile(r"\s+order\s+by\s+(\w+)(?:\s+(asc|desc))?\s*$", re.I)


@dataclass
class Jql:
    projects: set[str] | None = None
    resolved: bool | None = None
    updated_since: datetime | None = None
    descending: bool = False


def parse_jql(jql: str, zone: ZoneInfo) -> Jql:
    """The JQL subset the connector sends; anything else is refused like Jira does."""
    query = Jql()
    order = _ORDER.search(jql)
    if order:
        if order[1].lower() != "updated":
            raise HTTPException(400, detail=f"cannot order by {order[1]!r}")
        query.descending = (order[2] or "asc").lower() == "desc"
        jql = jql[: order.start()]
    for clause in (c.strip() for c in re.split(r"\s+AND\s+", jql.strip(), flags=re.I)):
        if not clause:
            continue
        if match := _PROJECT_IN.match(clause):
            query.projects = {p.strip().strip("\"'") for p in match[1].split(",") if p.strip()}
        elif match := _PROJECT_EQ.match(clause):
            query.projects = {match[1]}
        elif match := _RESOLUTION.match(clause):
            query.resolved = bool(match[1])
        elif match := _UPDATED.match(clause):
            for fmt in ("%Y/%m/%d %H:%M", "%Y-%m-%d %H:%M", "%Y/%m/%d", "%Y-%m-%d"):
                try:
                    local = datetime.strptime(match[1], fmt).replace(tzinfo=zone)
                    break
                except ValueError:
                    continue
            else:
                raise HTTPException(400, detail=f"Date value '{match[1]}' for field 'updated'")
            query.updated_since = local
        else:
            raise HTTPException(400, detail=f"Error in the JQL Query: unsupported {clause!r}")
    return query


def create_jira_app(
    store: JiraStore,
    *,
    token: str = TOKEN,
    email: str | None = None,
    max_results: int = 50,
    rate_limit_per_s: int | None = None,
    user_zone: str = USER_ZONE,
) -> FastAPI:
    """The fake. With ``email`` it expects Cloud's Basic auth, otherwise a Bearer PAT."""
    app = FastAPI(title="Fake Jira")
    faults = Faults()
    zone = ZoneInfo(user_zone)
    window: list[float] = []
    window_lock = threading.Lock()
    app.state.store = store
    app.state.faults = faults
    app.state.throttled = 0

    def authorised(request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        if email is not None:
            expected = base64.b64encode(f"{email}:{token}".encode()).decode()
            return header == f"Basic {expected}"
        return header == f"Bearer {token}"

    def over_rate() -> bool:
        if rate_limit_per_s is None:
            return False
        now = time.monotonic()
        with window_lock:
            while window and now - window[0] >= 1.0:
                window.pop(0)
            if len(window) >= rate_limit_per_s:
                return True
            window.append(now)
            return False

    @app.exception_handler(HTTPException)
    async def jira_errors(request: Request, exc: HTTPException) -> Response:
        return JSONResponse(
            {"errorMessages": [str(exc.detail)], "errors": {}}, status_code=exc.status_code
        )

    @app.middleware("http")
    async def gate(request: Request, call_next: Any) -> Response:
        path = request.url.path
        store.requests[path] = store.requests.get(path, 0) + 1
        if path.startswith("/_admin"):
            response: Response = await call_next(request)
            return response
        if not authorised(request):
            return JSONResponse(
                {"errorMessages": ["You are not authenticated."], "errors": {}}, status_code=401
            )
        if over_rate():
            app.state.throttled += 1
            return JSONResponse(
                {"errorMessages": ["Rate limit exceeded."]},
                status_code=429,
                headers={"Retry-After": "1"},
            )
        injected = faults.take(request)
        if injected is not None:
            return injected
        response = await call_next(request)
        return response

    def issue_json(request: Request, issue: FakeIssue, fields: set[str]) -> dict[str, Any]:
        every = "*all" in fields or "*navigable" in fields
        values: dict[str, Any] = {
            "summary": issue.summary,
            "description": copy.deepcopy(issue.description),
            "resolution": {"name": issue.resolution} if issue.resolution else None,
            "resolutiondate": jira_time(issue.updated) if issue.resolution else None,
            "updated": jira_time(issue.updated),
            "created": jira_time(issue.created),
            "status": {"name": issue.status},
            "project": {"key": issue.project},
            "issuetype": {"name": issue.issue_type},
            "reporter": issue.reporter,
            "labels": issue.labels,
            "components": [{"name": c} for c in issue.components],
            "comment": {
                "comments": copy.deepcopy(issue.comments[:SEARCH_COMMENTS]),
                "startAt": 0,
                "maxResults": SEARCH_COMMENTS,
                "total": len(issue.comments),
            },
        }
        base = str(request.base_url).rstrip("/")
        return {
            "id": str(10000 + int(issue.key.rsplit("-", 1)[1])),
            "key": issue.key,
            "self": f"{base}/rest/api/2/issue/{issue.key}",
            "fields": {k: v for k, v in values.items() if every or k in fields},
        }

    @app.get("/rest/api/{version}/search")
    def search(
        request: Request,
        version: str,
        jql: str = "",
        fields: str = "*navigable",
        startAt: int = 0,
        maxResults: int = 50,
    ) -> dict[str, Any]:
        query = parse_jql(jql, zone)
        with store.lock:
            found = [
                i
                for i in store.issues.values()
                if (query.projects is None or i.project in query.projects)
                and (query.resolved is None or (i.resolution is not None) == query.resolved)
                and (query.updated_since is None or i.updated >= query.updated_since)
            ]
            found.sort(key=lambda i: (i.updated, i.key), reverse=query.descending)
            limit = max(0, min(maxResults, max_results))
            page = found[startAt : startAt + limit]
            wanted = {f.strip() for f in fields.split(",") if f.strip()}
            issues = [issue_json(request, i, wanted) for i in page]
        return {"startAt": startAt, "maxResults": limit, "total": len(found), "issues": issues}

    @app.get("/rest/api/{version}/issue/{key}/comment")
    def comments(version: str, key: str, startAt: int = 0, maxResults: int = 50) -> dict[str, Any]:
        with store.lock:
            issue = store.issues.get(key)
            if issue is None:
                raise HTTPException(404, detail="Issue Does Not Exist")
            limit = max(0, min(maxResults, max_results))
            page = copy.deepcopy(issue.comments[startAt : startAt + limit])
            total = len(issue.comments)
        return {"startAt": startAt, "maxResults": limit, "total": total, "comments": page}

    def scheme_json(base: str, version: str, project: str) -> dict[str, Any]:
        grants = store.browse_grants.get(
            project, [{"type": "applicationRole", "parameter": "", "value": ""}]
        )
        restricted = sorted(store.browse_grants)
        scheme_id = 10100 + restricted.index(project) if project in restricted else 10000
        permissions = [
            # Other permissions come along in a real scheme: the reader must pick BROWSE.
            {
                "id": 1,
                "self": f"{base}/rest/api/{version}/permissionscheme/permission/1",
                "holder": {
                    "type": "group",
                    "parameter": "jira-administrators",
                    "value": "gid-jira-administrators",
                    "expand": "group",
                },
                "permission": "ADMINISTER_PROJECTS",
            }
        ]
        for n, holder in enumerate(grants, start=2):
            permissions.append(
                {
                    "id": n,
                    "self": f"{base}/rest/api/{version}/permissionscheme/permission/{n}",
                    "holder": copy.deepcopy(holder),
                    "permission": "BROWSE_PROJECTS",
                }
            )
        return {
            "expand": "permissions,user,group,projectRole,field,all",
            "id": scheme_id,
            "self": f"{base}/rest/api/{version}/permissionscheme/{scheme_id}",
            "name": "Default Permission Scheme" if scheme_id == 10000 else f"{project} scheme",
            "description": "",
            "permissions": permissions,
        }

    def project_or_404(project: str) -> None:
        if not any(i.project == project for i in store.issues.values()) and (
            project not in store.browse_grants
        ):
            raise HTTPException(404, detail=f"No project could be found with key '{project}'.")

    @app.get("/rest/api/{version}/project/{project}/permissionscheme")
    def permission_scheme(
        request: Request, version: str, project: str, expand: str = ""
    ) -> dict[str, Any]:
        with store.lock:
            project_or_404(project)
            if store.permissions_denied:
                raise HTTPException(
                    403, detail="You cannot view the permission scheme of this project."
                )
            scheme = scheme_json(str(request.base_url).rstrip("/"), version, project)
        if not expand:  # permissions come only with an expand
            scheme.pop("permissions")
        return scheme

    @app.get("/rest/api/{version}/project/{project}/role/{role_id}")
    def project_role(request: Request, version: str, project: str, role_id: int) -> dict[str, Any]:
        with store.lock:
            project_or_404(project)
            if store.permissions_denied:
                raise HTTPException(403, detail="You cannot view the roles of this project.")
            groups = list(store.role_groups.get((project, role_id), []))
        base = str(request.base_url).rstrip("/")
        return {
            "self": f"{base}/rest/api/{version}/project/{project}/role/{role_id}",
            "name": "Developers",
            "id": role_id,
            "description": "",
            "actors": [
                {
                    "id": n,
                    "displayName": group,
                    "type": "atlassian-group-role-actor",
                    "name": group,
                    "actorGroup": {"name": group, "displayName": group, "groupId": f"gid-{group}"},
                }
                for n, group in enumerate(groups, start=1)
            ],
        }

    @app.get("/rest/api/{version}/myself")
    def myself(version: str) -> dict[str, Any]:
        return {"name": "kb-reader", "displayName": "KB reader", "timeZone": user_zone}

    # -- admin ---------------------------------------------------------------------------
    @app.post("/_admin/faults")
    async def admin_faults(request: Request) -> dict[str, Any]:
        faults.add_from_spec(await request.json())
        return {"ok": True}

    @app.get("/_admin/stats")
    def admin_stats() -> dict[str, Any]:
        return {
            "issues": len(store.issues),
            "requests": store.requests,
            "faults": faults.injected,
            "throttled": app.state.throttled,
        }

    return app
