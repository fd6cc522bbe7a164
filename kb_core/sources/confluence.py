"""Confluence REST client (Data Center and Cloud) and the incremental page sync.

Data Center authenticates with a personal access token (Bearer); Cloud with Basic
``email:api_token``. Listing follows ``_links.next`` (the server may cap ``limit``);
incremental sync asks CQL for pages modified since the stored cursor minus an overlap
window (the CQL date format's time zone is not documented, so we overlap by an hour by
default); deletions are found by comparing the ids a space lists now with those indexed.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urljoin

import httpx

from kb_core.models import SourceDocument
from kb_core.sources.cursor import SyncCursor, parse_time
from kb_core.sources.http import ApiHttp, RetryPolicy, SourceHTTPError, atlassian_auth

log = logging.getLogger(__name__)

SOURCE_NAME = "confluence"
# View restrictions come with every page (issue 25): who may read it is synced with it.
RESTRICTIONS_EXPAND = "restrictions.read.restrictions.group,restrictions.read.restrictions.user"
PAGE_EXPAND = f"body.storage,version,ancestors,space,metadata.labels,{RESTRICTIONS_EXPAND}"
LISTING_EXPAND = f"ancestors,space,{RESTRICTIONS_EXPAND}"
CQL_TIME_FORMAT = "%Y-%m-%d %H:%M"


_AC_LINK = re.compile(r"<ac:link\b[^>]*>(?P<inner>.*?)</ac:link>", re.DOTALL)
_RI_PAGE = re.compile(r"<ri:page\b(?P<attrs>[^>]*?)/?>", re.DOTALL)
_ATTR = re.compile(r'(?P<name>[\w:-]+)="(?P<value>[^"]*)"')
_PLAIN_BODY = re.compile(
    r"<ac:plain-text-link-body>\s*<!\[CDATA\[(?P<text>.*?)\]\]>\s*</ac:plain-text-link-body>",
    re.DOTALL,
)
_RICH_BODY = re.compile(r"<ac:link-body>(?P<html>.*?)</ac:link-body>", re.DOTALL)


def link_internal_pages(body: str, base_url: str, space: str) -> str:
    """Links to other pages as plain HTML links with the target's URL and title.

    Storage format names a linked page only by title (and space); the Markdown keeps
    the link text, the target page's URL and, as the link's title, the page's title, so
    a reader (and the answer's sources) can follow it. Links to users, attachments and
    anchors are left to the converter.
    """

    def rewrite(match: re.Match[str]) -> str:
        inner = match["inner"]
        page = _RI_PAGE.search(inner)
        if page is None:
            return match[0]
        attrs = {a["name"]: html.unescape(a["value"]) for a in _ATTR.finditer(page["attrs"])}
        title = attrs.get("ri:content-title", "")
        if not title:
            return match[0]
        target_space = attrs.get("ri:space-key") or space
        path = quote(title.replace(" ", "+"), safe="+")
        url = f"{base_url.rstrip('/')}/display/{quote(target_space)}/{path}"
        if plain := _PLAIN_BODY.search(inner):
            text = html.escape(plain["text"], quote=False)
        elif rich := _RICH_BODY.search(inner):
            text = rich["html"]
        else:
            text = html.escape(title, quote=False)
        return f'<a href="{html.escape(url)}" title="{html.escape(title)}">{text}</a>'

    return _AC_LINK.sub(rewrite, body)


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


@dataclass(frozen=True)
class ConfluenceAttachment:
    id: str
    page_id: str
    filename: str
    media_type: str
    size: int
    version: int
    download: str  # absolute URL


COMMENTS_HEADING = "Комментарии"


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
        headers, auth = atlassian_auth(token, email)
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
            body=link_internal_pages(
                str(((raw.get("body") or {}).get("storage") or {}).get("value", "")),
                base or self.base_url,
                str((raw.get("space") or {}).get("key", "")),
            ),
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

    def get_page(self, page_id: str) -> ConfluencePage | None:
        """One page with its body; None when it does not exist (any more)."""
        response = self.http.request(
            "GET", f"rest/api/content/{page_id}", params={"expand": PAGE_EXPAND}
        )
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise SourceHTTPError(
                f"confluence: page {page_id}: HTTP {response.status_code}",
                status=response.status_code,
            )
        return self._page(response.json())

    # -- attachments and comments (issue 24) ---------------------------------------------
    def iter_attachments(self, page_id: str) -> Iterator[ConfluenceAttachment]:
        """Every attachment of a page (metadata only; :meth:`download` fetches one)."""
        params = {"expand": "version,extensions", "start": 0, "limit": self.page_limit}
        for raw in self._paged(f"rest/api/content/{page_id}/child/attachment", params):
            extensions = raw.get("extensions") or {}
            link = str((raw.get("_links") or {}).get("download", ""))
            yield ConfluenceAttachment(
                id=str(raw["id"]),
                page_id=page_id,
                filename=str(raw.get("title", "")),
                media_type=str(extensions.get("mediaType", "")),
                size=int(extensions.get("fileSize") or 0),
                version=int((raw.get("version") or {}).get("number", 0)),
                # `download` is relative to the context path (…/wiki), like `next`.
                download=self.base_url + link if link.startswith("/") else link,
            )

    def download(self, attachment: ConfluenceAttachment) -> bytes:
        response = self.http.request("GET", attachment.download)
        if response.status_code >= 400:
            raise SourceHTTPError(
                f"confluence: attachment {attachment.id} download failed: "
                f"HTTP {response.status_code}",
                status=response.status_code,
            )
        return response.content

    def page_comments(self, page_id: str) -> list[str]:
        """Storage bodies of a page's footer comments and resolved inline comments.

        Open inline comments are discussions in progress, not knowledge; authors are
        never read (the knowledge base keeps no names)."""
        params: dict[str, Any] = {
            "expand": "body.storage,extensions.resolution",
            "location": ["footer", "inline", "resolved"],
            "depth": "all",
            "start": 0,
            "limit": self.page_limit,
        }
        bodies = []
        for raw in self._paged(f"rest/api/content/{page_id}/child/comment", params):
            extensions = raw.get("extensions") or {}
            resolution = (extensions.get("resolution") or {}).get("status")
            if extensions.get("location") == "inline" and resolution != "resolved":
                continue
            body = str(((raw.get("body") or {}).get("storage") or {}).get("value", ""))
            if body.strip():
                bodies.append(body)
        return bodies

    def with_comments(self, page: ConfluencePage) -> ConfluencePage:
        """The page with its comments appended to the body under their own heading."""
        bodies = self.page_comments(page.id)
        if not bodies:
            return page
        extra = "".join(f"<div>{body}</div>" for body in bodies)
        return replace(page, body=f"{page.body}<h2>{COMMENTS_HEADING}</h2>{extra}")


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
    comments: bool = False,
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
        if comments:
            pages = [client.with_comments(page) for page in pages]
        newest = max((p.last_modified for p in pages if p.last_modified), default=None)
        return ConfluenceFetch(
            mode="full",
            pages=pages,
            live_ids={p.id for p in pages},
            cursor=SyncCursor(last_modified=newest, last_full_listing=now),
            access=effective_access(pages, groups, client.read_restriction),
        )
    pages = list(client.iter_modified_since(spaces, cursor.last_modified - overlap))
    if comments:
        pages = [client.with_comments(page) for page in pages]
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
