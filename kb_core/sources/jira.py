"""Jira REST client (Server/Data Center and Cloud) and the incremental issue sync.

Server/Data Center authenticates with a personal access token (Bearer); Cloud with Basic
``email:api_token``. Resolved issues of the configured projects become question +
resolution documents: the reporter's description, the resolution and the comments of
people (bots excluded by a configured account list). The sync asks JQL for issues
``updated >=`` the stored cursor minus an overlap (JQL dates are minute-precise and in
the user's time zone, so the overlap must cover both); deletions (an issue deleted,
moved out of the projects or reopened) are found by listing the keys of every resolved
issue and comparing them with those indexed. Every request goes through
:class:`ApiHttp`, which retries 429/5xx honouring ``Retry-After``.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from kb_core.models import SourceDocument
from kb_core.sources.cursor import SyncCursor, parse_time
from kb_core.sources.http import ApiHttp, RetryPolicy, SourceHTTPError, atlassian_auth

SOURCE_NAME = "jira"
RAW_FORMAT = "jira_issue"
JQL_TIME_FORMAT = "%Y/%m/%d %H:%M"
ISSUE_FIELDS = (
    "summary,description,resolution,resolutiondate,updated,created,status,project,"
    "issuetype,reporter,labels,components,comment"
)


def parse_jira_time(value: str | None) -> datetime | None:
    """Jira's ``2026-03-02T10:15:00.000+0300`` (no colon in the offset) or ISO."""
    if value and len(value) > 5 and value[-5] in "+-" and value[-4:].isdigit():
        value = value[:-2] + ":" + value[-2:]
    return parse_time(value)


def _account(user: dict[str, Any] | None) -> str:
    """A stable id of a user: Cloud's accountId, Server's name or key."""
    user = user or {}
    return str(user.get("accountId") or user.get("name") or user.get("key") or "")


@dataclass(frozen=True)
class JiraComment:
    author: str
    body: str | dict[str, Any]
    created: datetime | None


@dataclass(frozen=True)
class JiraIssue:
    key: str
    project: str
    summary: str
    description: str | dict[str, Any] | None
    resolution: str | None
    reporter: str
    updated: datetime | None
    url: str
    issue_type: str = ""
    labels: tuple[str, ...] = ()
    components: tuple[str, ...] = ()
    comments: tuple[JiraComment, ...] = ()

    def as_document(self, bot_accounts: Collection[str] = ()) -> SourceDocument:
        """The question + resolution document; people's names and ids never enter it."""
        comments = [
            {
                "role": "reporter" if c.author and c.author == self.reporter else "agent",
                "body": c.body,
            }
            for c in self.comments
            if c.author not in bot_accounts
        ]
        body = {
            "key": self.key,
            "summary": self.summary,
            "description": self.description,
            "resolution": self.resolution,
            "comments": comments,
        }
        return SourceDocument(
            source=SOURCE_NAME,
            external_id=self.key,
            title=f"{self.key}: {self.summary}",
            raw_format=RAW_FORMAT,
            raw_body=json.dumps(body, ensure_ascii=False, sort_keys=True),
            url=self.url,
            updated_at=self.updated,
            metadata={
                "project": self.project,
                "issue_type": self.issue_type,
                "resolution": self.resolution,
                "labels": list(self.labels),
                "components": list(self.components),
                "comments": len(comments),
            },
        )


class JiraClient:
    """Read-only access to the issues of some projects."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str,
        email: str | None = None,
        api_version: str = "2",
        page_limit: int = 50,
        timeout_s: float = 30.0,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api = f"rest/api/{api_version}"
        self.page_limit = page_limit
        headers, auth = atlassian_auth(token, email)
        self.http = ApiHttp(
            self.base_url + "/",
            name="jira",
            timeout_s=timeout_s,
            policy=policy,
            headers=headers,
            auth=auth,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> JiraClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _get_json(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        response = self.http.request("GET", path, params=params)
        if response.status_code in (401, 403):
            raise SourceHTTPError(
                f"jira: access denied ({response.status_code}) for {path}; "
                "check KB_JIRA_TOKEN (and KB_JIRA_EMAIL for Cloud)",
                status=response.status_code,
            )
        if response.status_code >= 400:
            raise SourceHTTPError(
                f"jira: GET {path} failed: HTTP {response.status_code}: {response.text[:300]}",
                status=response.status_code,
            )
        data: dict[str, Any] = response.json()
        return data

    def user_zone(self) -> ZoneInfo:
        """The time zone Jira reads JQL dates in (the account's), UTC when unknown."""
        try:
            name = self._get_json(f"{self.api}/myself", {}).get("timeZone")
            return ZoneInfo(str(name)) if name else ZoneInfo("UTC")
        except (SourceHTTPError, ZoneInfoNotFoundError, ValueError):
            return ZoneInfo("UTC")

    def search(self, jql: str, fields: str) -> Iterator[dict[str, Any]]:
        """Every issue a JQL query finds, paging by ``startAt`` until ``total``."""
        start = 0
        while True:
            data = self._get_json(
                f"{self.api}/search",
                {"jql": jql, "fields": fields, "startAt": start, "maxResults": self.page_limit},
            )
            issues = data.get("issues", [])
            yield from issues
            start += len(issues)
            if not issues or start >= int(data.get("total", 0)):
                return

    def comments(self, key: str) -> Iterator[dict[str, Any]]:
        """Every comment of an issue (search results may carry only the first ones)."""
        start = 0
        while True:
            data = self._get_json(
                f"{self.api}/issue/{key}/comment",
                {"startAt": start, "maxResults": self.page_limit, "orderBy": "created"},
            )
            items = data.get("comments", [])
            yield from items
            start += len(items)
            if not items or start >= int(data.get("total", 0)):
                return

    def permission_scheme(self, project: str) -> dict[str, Any]:
        """The project's permission scheme with its grants (needs project administration
        or Jira administration; a plain reader gets 403)."""
        return self._get_json(
            f"{self.api}/project/{project}/permissionscheme",
            {"expand": "permissions,group,projectRole"},
        )

    def project_role(self, project: str, role_id: str) -> dict[str, Any]:
        """A project role with its actors (users and groups)."""
        return self._get_json(f"{self.api}/project/{project}/role/{role_id}", {})

    def issue(self, raw: dict[str, Any]) -> JiraIssue:
        fields = raw.get("fields") or {}
        block = fields.get("comment") or {}
        raw_comments = list(block.get("comments") or [])
        if int(block.get("total", len(raw_comments))) > len(raw_comments):
            raw_comments = list(self.comments(str(raw["key"])))
        return JiraIssue(
            key=str(raw["key"]),
            project=str((fields.get("project") or {}).get("key", "")),
            summary=str(fields.get("summary") or ""),
            description=fields.get("description"),
            resolution=(fields.get("resolution") or {}).get("name"),
            reporter=_account(fields.get("reporter")),
            updated=parse_jira_time(fields.get("updated")),
            url=f"{self.base_url}/browse/{raw['key']}",
            issue_type=str((fields.get("issuetype") or {}).get("name", "")),
            labels=tuple(str(v) for v in fields.get("labels") or []),
            components=tuple(str(c.get("name", "")) for c in fields.get("components") or []),
            comments=tuple(
                JiraComment(
                    author=_account(c.get("author")),
                    body=c.get("body") or "",
                    created=parse_jira_time(c.get("created")),
                )
                for c in raw_comments
            ),
        )


def resolved_jql(
    projects: list[str], since: datetime | None = None, zone: ZoneInfo | None = None
) -> str:
    keys = ", ".join(f'"{p}"' for p in projects)
    jql = f"project in ({keys}) AND resolution is not EMPTY"
    if since is not None:
        local = since.astimezone(zone) if zone is not None else since
        jql += f' AND updated >= "{local.strftime(JQL_TIME_FORMAT)}"'
    return jql + " ORDER BY updated ASC"


@dataclass
class JiraFetch:
    """One sync's input for the documents table."""

    mode: str  # "full" or "incremental"
    issues: list[JiraIssue] = field(default_factory=list)
    live_ids: set[str] | None = None
    cursor: SyncCursor = field(default_factory=SyncCursor)


def fetch_changes(
    client: JiraClient,
    projects: list[str],
    cursor: SyncCursor,
    *,
    now: datetime,
    overlap: timedelta = timedelta(hours=1),
    listing_interval: timedelta = timedelta(hours=0),
) -> JiraFetch:
    """Issues to (re)write and, when due, the keys still resolved in the projects.

    First run: every resolved issue (the result doubles as the deletion check). Later
    runs: issues updated since the cursor minus ``overlap`` (unchanged ones keep their
    hash and cost nothing downstream), plus a key listing when ``listing_interval`` has
    passed. The cursor is the newest ``updated`` seen, never our clock.
    """
    if cursor.last_modified is None:
        issues = [client.issue(raw) for raw in client.search(resolved_jql(projects), ISSUE_FIELDS)]
        newest = max((i.updated for i in issues if i.updated), default=None)
        return JiraFetch(
            mode="full",
            issues=issues,
            live_ids={i.key for i in issues},
            cursor=SyncCursor(last_modified=newest, last_full_listing=now),
        )
    since = cursor.last_modified - overlap
    jql = resolved_jql(projects, since, client.user_zone())
    issues = [client.issue(raw) for raw in client.search(jql, ISSUE_FIELDS)]
    newest = max([i.updated for i in issues if i.updated] + [cursor.last_modified])
    listing_due = cursor.listing_due(now, listing_interval)
    live_ids: set[str] | None = None
    if listing_due:
        live_ids = {str(raw["key"]) for raw in client.search(resolved_jql(projects), "key")}
    return JiraFetch(
        mode="incremental",
        issues=issues,
        live_ids=live_ids,
        cursor=SyncCursor(
            last_modified=newest,
            last_full_listing=now if listing_due else cursor.last_full_listing,
        ),
    )
