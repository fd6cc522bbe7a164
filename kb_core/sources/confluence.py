"""Confluence REST client (Data Center and Cloud) and the incremental page sync.

Data Center authenticates with a personal access token (Bearer); Cloud with Basic
``email:api_token``. Listing follows ``_links.next`` (the server may cap ``limit``);
incremental sync asks CQL for pages modified since the stored cursor minus an overlap
window (the CQL date format's time zone is not documented, so we overlap by an hour by
default); deletions are found by comparing the ids a space lists now with those indexed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
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
# View restrictions come with every page (issue 25): who may read it is synced with it.
RESTRICTIONS_EXPAND = "restrictions.read.restrictions.group,restrictions.read.restrictions.user"
PAGE_EXPAND = f"body.storage,version,ancestors,space,metadata.labels,{RESTRICTIONS_EXPAND}"
LISTING_EXPAND = f"ancestors,space,{RESTRICTIONS_EXPAND}"
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
    # The page's own view restriction: None when it has none, else the groups it names
    # (empty when it names users only: no group reader may see it).
    read_groups: frozenset[str] | None = None
    ancestor_ids: tuple[str, ...] = ()

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
            read_groups=read_restriction(((raw.get("restrictions") or {}).get("read")) or {}),
            ancestor_ids=tuple(str(a["id"]) for a in raw.get("ancestors", []) if "id" in a),
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

    def iter_space_listing(self, space: str) -> Iterator[ConfluencePage]:
        """Every current page of a space with its restrictions and ancestors, no body:
        the deletion check and the permission sync in one listing."""
        params = {
            "spaceKey": space,
            "type": "page",
            "status": "current",
            "expand": LISTING_EXPAND,
            "start": 0,
            "limit": self.page_limit,
        }
        for raw in self._paged("rest/api/content", params):
            yield self._page(raw)

    def read_restriction(self, page_id: str) -> frozenset[str] | None:
        """A page's own view restriction (for an ancestor not listed with its pages)."""
        return read_restriction(
            self._get_json(f"rest/api/content/{page_id}/restriction/byOperation/read")
        )

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


def read_restriction(restriction: dict[str, Any]) -> frozenset[str] | None:
    """The groups of a ``read`` restriction object; None when it restricts nothing."""
    parts = restriction.get("restrictions") or {}
    groups = [str(g.get("name")) for g in (parts.get("group") or {}).get("results", [])]
    users = (parts.get("user") or {}).get("results", [])
    if not groups and not users:
        return None
    return frozenset(g for g in groups if g)


def effective_access(
    pages: Iterable[ConfluencePage],
    space_groups: Mapping[str, frozenset[str]],
    lookup: Callable[[str], frozenset[str] | None],
) -> dict[str, frozenset[str] | None]:
    """Who may read each page: Confluence lets a reader see a page only when the space,
    every ancestor and the page itself allow it. Each restricted level names groups; a
    reader must be in a group of every level, kept here as the groups common to all of
    them (a reader who passes each level through a different group is refused: never
    too open). None: nothing restricts the page. ``lookup`` reads an ancestor's own
    restriction when it was not among ``pages``."""
    pages = list(pages)
    known: dict[str, frozenset[str] | None] = {p.id: p.read_groups for p in pages}

    def restriction(page_id: str) -> frozenset[str] | None:
        if page_id not in known:
            known[page_id] = lookup(page_id)
        return known[page_id]

    access: dict[str, frozenset[str] | None] = {}
    for page in pages:
        levels = [space_groups.get(page.space), *map(restriction, page.ancestor_ids)]
        restricted = [level for level in (*levels, page.read_groups) if level is not None]
        access[page.id] = frozenset.intersection(*restricted) if restricted else None
    return access


@dataclass
class ConfluenceFetch:
    """One sync's input for the documents table."""

    mode: str  # "full" or "incremental"
    pages: list[ConfluencePage] = field(default_factory=list)
    live_ids: set[str] | None = None  # set when deletions were checked
    cursor: SyncCursor = field(default_factory=SyncCursor)
    # Who may read each page fetched or listed (None: everyone), for document_access.
    access: dict[str, frozenset[str] | None] = field(default_factory=dict)


def fetch_changes(
    client: ConfluenceClient,
    spaces: list[str],
    cursor: SyncCursor,
    *,
    now: datetime,
    overlap: timedelta = timedelta(hours=1),
    listing_interval: timedelta = timedelta(hours=0),
    space_groups: Mapping[str, frozenset[str]] | None = None,
) -> ConfluenceFetch:
    """Pages to (re)write and, when due, the ids still alive.

    First run (no cursor): every page with its body; the listing doubles as the
    deletion check. Later runs: pages modified since the cursor minus ``overlap``
    (re-fetching a few unchanged pages is harmless: their hash is unchanged), plus an id
    listing when ``listing_interval`` has passed since the last one.
    """
    groups = space_groups or {}
    if cursor.last_modified is None:
        pages = [page for space in spaces for page in client.iter_space_pages(space)]
        newest = max((p.last_modified for p in pages if p.last_modified), default=None)
        return ConfluenceFetch(
            mode="full",
            pages=pages,
            live_ids={p.id for p in pages},
            cursor=SyncCursor(last_modified=newest, last_full_listing=now),
            access=effective_access(pages, groups, client.read_restriction),
        )
    pages = list(client.iter_modified_since(spaces, cursor.last_modified - overlap))
    newest = max([p.last_modified for p in pages if p.last_modified] + [cursor.last_modified])
    listing_due = cursor.listing_due(now, listing_interval)
    live_ids: set[str] | None = None
    # Restrictions change without a new page version: the listing re-reads every page's.
    listed: list[ConfluencePage] = []
    if listing_due:
        listed = [page for space in spaces for page in client.iter_space_listing(space)]
        live_ids = {page.id for page in listed}
    by_id = {page.id: page for page in listed}
    by_id.update({page.id: page for page in pages})
    return ConfluenceFetch(
        mode="incremental",
        pages=pages,
        live_ids=live_ids,
        access=effective_access(by_id.values(), groups, client.read_restriction),
        cursor=SyncCursor(
            last_modified=newest,
            last_full_listing=now if listing_due else cursor.last_full_listing,
        ),
    )
