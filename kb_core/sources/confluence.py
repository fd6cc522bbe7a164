"""Confluence REST client (Data Center and Cloud) and the incremental page sync.

Data Center authenticates with a personal access token (Bearer); Cloud with Basic
``email:api_token``. Listing follows ``_links.next`` (the server may cap ``limit``);
incremental sync asks CQL for pages modified since the stored cursor minus an overlap
window (the CQL date format's time zone is not documented, so we overlap by an hour by
default); deletions are found by comparing the ids a space lists now with those indexed.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urljoin

import httpx

from kb_core.models import SourceDocument
from kb_core.sources.cursor import SyncCursor, parse_time
from kb_core.sources.http import ApiHttp, RetryPolicy, SourceHTTPError

log = logging.getLogger(__name__)

SOURCE_NAME = "confluence"
PAGE_EXPAND = "body.storage,version,ancestors,space,metadata.labels"
CQL_TIME_FORMAT = "%Y-%m-%d %H:%M"


@dataclass(frozen=True)
class ConfluencePage:
    id: str
    space: str
    title: str
    version: int
    last_modified: datetime | None
    body: str
    url: str | None
    ancestors: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()

    def as_document(self) -> SourceDocument:
        return SourceDocument(
            source=SOURCE_NAME,
            external_id=self.id,
            title=self.title,
            raw_format="confluence_storage",
            raw_body=self.body,
            url=self.url,
            updated_at=self.last_modified,
            metadata={
                "space": self.space,
                "version": self.version,
                "ancestors": list(self.ancestors),
                "labels": list(self.labels),
            },
        )


class ConfluenceClient:
    """Read-only access to the pages of some spaces."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str,
        email: str | None = None,
        page_limit: int = 50,
        timeout_s: float = 30.0,
        policy: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.page_limit = page_limit
        headers = {"Accept": "application/json"}
        auth: tuple[str, str] | None = None
        if email:  # Cloud: Basic email:api_token
            auth = (email, token)
        else:  # Data Center / Server: personal access token
            headers["Authorization"] = f"Bearer {token}"
        self.http = ApiHttp(
            self.base_url + "/",
            name="confluence",
            timeout_s=timeout_s,
            policy=policy,
            headers=headers,
            auth=auth,
            transport=transport,
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ConfluenceClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport -----------------------------------------------------------------------
    def _get_json(self, url: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        response = self.http.request("GET", url, params=params)
        if response.status_code in (401, 403):
            raise SourceHTTPError(
                f"confluence: access denied ({response.status_code}) for {url}; "
                "check KB_CONFLUENCE_TOKEN (and KB_CONFLUENCE_EMAIL for Cloud)",
                status=response.status_code,
            )
        if response.status_code >= 400:
            raise SourceHTTPError(
                f"confluence: GET {url} failed: HTTP {response.status_code}: {response.text[:300]}",
                status=response.status_code,
            )
        data: dict[str, Any] = response.json()
        return data

    def _paged(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Every result of a listing, following ``_links.next`` until it is absent."""
        data = self._get_json(path, params)
        while True:
            yield from data.get("results", [])
            links = data.get("_links", {})
            next_link = links.get("next")
            if not next_link:
                return
            base = links.get("base") or self.base_url
            # `next` is relative to the context path (…/wiki), not to the host.
            url = base.rstrip("/") + next_link if next_link.startswith("/") else next_link
            data = self._get_json(url)

    def _page(self, raw: dict[str, Any], base: str | None = None) -> ConfluencePage:
        links = raw.get("_links", {})
        webui = links.get("webui")
        version = raw.get("version") or {}
        labels = (raw.get("metadata") or {}).get("labels", {}).get("results", [])
        return ConfluencePage(
            id=str(raw["id"]),
            space=str((raw.get("space") or {}).get("key", "")),
            title=str(raw.get("title", "")),
            version=int(version.get("number", 0)),
            last_modified=parse_time(version.get("when")),
            body=str(((raw.get("body") or {}).get("storage") or {}).get("value", "")),
            url=urljoin((base or self.base_url).rstrip("/") + "/", webui.lstrip("/"))
            if webui
            else None,
            ancestors=tuple(str(a.get("title", "")) for a in raw.get("ancestors", [])),
            labels=tuple(str(label.get("name", "")) for label in labels),
        )

    # -- API -----------------------------------------------------------------------------
    def iter_space_pages(self, space: str) -> Iterator[ConfluencePage]:
        """Every current page of a space, with its body."""
        params = {
            "spaceKey": space,
            "type": "page",
            "status": "current",
            "expand": PAGE_EXPAND,
            "start": 0,
            "limit": self.page_limit,
        }
        for raw in self._paged("rest/api/content", params):
            yield self._page(raw)

    def iter_space_page_ids(self, space: str) -> Iterator[str]:
        """Ids of every current page of a space (no bodies: cheap)."""
        params = {"spaceKey": space, "type": "page", "status": "current", "limit": 200}
        for raw in self._paged("rest/api/content", params):
            yield str(raw["id"])

    def iter_modified_since(
        self, spaces: Iterable[str], since: datetime
    ) -> Iterator[ConfluencePage]:
        """Pages of ``spaces`` modified at or after ``since``, oldest first."""
        keys = ", ".join(f'"{s}"' for s in spaces)
        cql = (
            f"space in ({keys}) AND type = page AND "
            f'lastmodified >= "{since.strftime(CQL_TIME_FORMAT)}" ORDER BY lastmodified ASC'
        )
        params = {"cql": cql, "expand": PAGE_EXPAND, "start": 0, "limit": self.page_limit}
        for raw in self._paged("rest/api/content/search", params):
            yield self._page(raw)


@dataclass
class ConfluenceFetch:
    """One sync's input for the documents table."""

    mode: str  # "full" or "incremental"
    pages: list[ConfluencePage] = field(default_factory=list)
    live_ids: set[str] | None = None  # set when deletions were checked
    cursor: SyncCursor = field(default_factory=SyncCursor)


def fetch_changes(
    client: ConfluenceClient,
    spaces: list[str],
    cursor: SyncCursor,
    *,
    now: datetime,
    overlap: timedelta = timedelta(hours=1),
    listing_interval: timedelta = timedelta(hours=0),
) -> ConfluenceFetch:
    """Pages to (re)write and, when due, the ids still alive.

    First run (no cursor): every page with its body; the listing doubles as the
    deletion check. Later runs: pages modified since the cursor minus ``overlap``
    (re-fetching a few unchanged pages is harmless: their hash is unchanged), plus an id
    listing when ``listing_interval`` has passed since the last one.
    """
    if cursor.last_modified is None:
        pages = [page for space in spaces for page in client.iter_space_pages(space)]
        newest = max((p.last_modified for p in pages if p.last_modified), default=None)
        return ConfluenceFetch(
            mode="full",
            pages=pages,
            live_ids={p.id for p in pages},
            cursor=SyncCursor(last_modified=newest, last_full_listing=now),
        )
    pages = list(client.iter_modified_since(spaces, cursor.last_modified - overlap))
    newest = max([p.last_modified for p in pages if p.last_modified] + [cursor.last_modified])
    listing_due = cursor.listing_due(now, listing_interval)
    live_ids: set[str] | None = None
    if listing_due:
        live_ids = {page_id for space in spaces for page_id in client.iter_space_page_ids(space)}
    return ConfluenceFetch(
        mode="incremental",
        pages=pages,
        live_ids=live_ids,
        cursor=SyncCursor(
            last_modified=newest,
            last_full_listing=now if listing_due else cursor.last_full_listing,
        ),
    )
