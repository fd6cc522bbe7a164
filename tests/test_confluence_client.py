"""The Confluence client against the fake Confluence over real HTTP."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from kb_core.sources.confluence import ConfluenceClient, fetch_changes
from kb_core.sources.cursor import SyncCursor
from kb_core.sources.http import RetryPolicy, SourceHTTPError
from kb_fakes.confluence import ConfluenceStore, FakePage, create_confluence_app, parse_cql
from kb_fakes.server import ServerThread

FAST = RetryPolicy(attempts=4, backoff_initial_s=0.01, backoff_max_s=0.2)
T0 = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)


def _store(n: int = 7) -> ConfluenceStore:
    pages = [
        FakePage(
            id=str(1000 + i),
            space="SUP" if i % 2 else "ADM",
            title=f"Страница {i}",
            body=f"<p>Текст {i}</p>",
            last_modified=T0 + timedelta(hours=i),
            parent_id="1000" if i else None,
        )
        for i in range(n)
    ]
    return ConfluenceStore(pages)


@pytest.fixture
def fake():
    store = _store()
    with ServerThread(create_confluence_app(store, token="pat", max_limit=2)) as server:
        yield server, store


def _client(server, **kw) -> ConfluenceClient:
    return ConfluenceClient(server.url, token="pat", page_limit=50, policy=FAST, **kw)


def test_lists_every_page_following_next_links_under_a_server_cap(fake):
    server, store = fake
    with _client(server) as client:
        pages = list(client.iter_space_pages("SUP"))
        assert [p.id for p in pages] == ["1001", "1003", "1005"]
        page = pages[0]
        assert page.title == "Страница 1" and page.body == "<p>Текст 1</p>"
        assert page.version == 1 and page.last_modified == T0 + timedelta(hours=1)
        assert page.ancestors == ("Страница 0",)
        assert page.url and page.url.startswith(server.url + "/display/SUP/")
    # limit 50 was capped at 2 by the server: 3 pages took 2 requests
    assert store.requests["/rest/api/content"] == 2


def test_incremental_query_uses_cql_lastmodified(fake):
    server, _ = fake
    with _client(server) as client:
        pages = list(client.iter_modified_since(["SUP", "ADM"], T0 + timedelta(hours=4)))
    assert [p.id for p in pages] == ["1004", "1005", "1006"]  # oldest first


def test_cloud_basic_auth(fake):
    store = _store(2)
    app = create_confluence_app(store, token="api-token", email="robot@example.com")
    with ServerThread(app) as server:
        ok = ConfluenceClient(server.url, token="api-token", email="robot@example.com", policy=FAST)
        assert len(list(ok.iter_space_pages("ADM"))) == 1
        bad = ConfluenceClient(server.url, token="api-token", policy=FAST)  # Bearer: refused
        with pytest.raises(SourceHTTPError, match="access denied"):
            list(bad.iter_space_pages("ADM"))


def test_429_with_retry_after_is_retried(fake):
    server, _ = fake
    httpx.post(f"{server.url}/_admin/faults", json={"status": 429, "count": 2, "retry_after": 0.05})
    with _client(server) as client:
        assert len(list(client.iter_space_pages("ADM"))) == 4
        assert client.http.retries == 2


def test_503_then_give_up_with_a_clear_error(fake):
    server, _ = fake
    httpx.post(f"{server.url}/_admin/faults", json={"status": 503, "count": 10})
    with _client(server) as client, pytest.raises(SourceHTTPError, match="after 4 attempts"):
        list(client.iter_space_pages("ADM"))


def test_unreachable_server_is_reported_after_retries():
    client = ConfluenceClient("http://127.0.0.1:1", token="x", policy=FAST, timeout_s=0.5)
    with pytest.raises(SourceHTTPError, match="unreachable"):
        list(client.iter_space_pages("SUP"))


def test_fetch_full_then_incremental_with_deletions(fake):
    server, store = fake
    now = T0 + timedelta(days=30)
    with _client(server) as client:
        first = fetch_changes(client, ["SUP", "ADM"], SyncCursor(), now=now)
        assert first.mode == "full" and len(first.pages) == 7
        assert first.live_ids == {str(1000 + i) for i in range(7)}
        assert first.cursor.last_modified == T0 + timedelta(hours=6)

        store.upsert("1002", body="<p>новый текст</p>", last_modified=now)
        store.delete("1003")
        second = fetch_changes(
            client, ["SUP", "ADM"], first.cursor, now=now, overlap=timedelta(hours=1)
        )
    assert second.mode == "incremental"
    # the overlap window re-reads the newest old page (harmless: its hash is unchanged)
    assert [p.id for p in second.pages] == ["1005", "1006", "1002"]
    assert second.live_ids is not None and "1003" not in second.live_ids
    assert second.cursor.last_modified == now


def test_listing_for_deletions_only_when_due(fake):
    server, _ = fake
    now = T0 + timedelta(days=30)
    cursor = SyncCursor(last_modified=now, last_full_listing=now - timedelta(hours=2))
    with _client(server) as client:
        skipped = fetch_changes(
            client, ["SUP"], cursor, now=now, listing_interval=timedelta(hours=24)
        )
        due = fetch_changes(client, ["SUP"], cursor, now=now, listing_interval=timedelta(hours=1))
    assert skipped.live_ids is None and skipped.cursor.last_full_listing == cursor.last_full_listing
    assert due.live_ids == {"1001", "1003", "1005"} and due.cursor.last_full_listing == now


def test_cql_subset_parser():
    spaces, since, kind = parse_cql(
        'space in ("SUP", "ADM") AND type = page AND lastmodified >= "2026-10-01 09:30" '
        "ORDER BY lastmodified ASC"
    )
    assert spaces == {"SUP", "ADM"} and kind == "page"
    assert since == datetime(2026, 10, 1, 9, 30, tzinfo=UTC)
