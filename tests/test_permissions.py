"""Answers within each reader's rights: a Confluence page restricted to one group.

The page is synced with its restriction from the fake Confluence (the REST shapes of
``expand=restrictions.read.restrictions.group`` and ``…/restriction/byOperation/read``);
then searches, answers and sources are checked for a reader outside the group and one
inside, and the bot's comment on a form whose audience lacks the group.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bot_api.app import create_app
from kb_core.bot import jobs
from kb_core.bot.context import bot_context
from kb_core.bot.worker import process_job
from kb_core.db import Database
from kb_core.embeddings import query_embedder
from kb_core.search import SearchOptions, search
from kb_core.search.access import form_audiences
from kb_core.settings import Settings
from kb_core.sources.confluence import ConfluencePage, effective_access
from kb_fakes.confluence import ConfluenceStore
from kb_fakes.services import FakeServices, start_fakes
from tests.conftest import run_ingest

SECRET_ID = "1009001"
SECRET_TITLE = "Регламент доступа в серверную «Альбатрос»"
SECRET_BODY = (
    "<p>Процедура «Альбатрос»: доступ в серверную выдаёт дежурный инженер второй линии "
    "по заявке в форме допуска. Ключ от стойки хранится у начальника смены.</p>"
)
QUESTION = "процедура Альбатрос доступ в серверную"
GROUP = "l2-engineers"
TICKETS_FORM = 321


# A slice of the sample spaces keeps each ingest short; the evaluation gate (whose golden
# set needs every sample page) is off, the permission filter is what is under test.
KEPT_PAGES = 12


@pytest.fixture
def fakes() -> Iterator[FakeServices]:
    samples = ConfluenceStore.from_samples()
    kept = [*sorted(samples.pages)[:KEPT_PAGES], "1002001"]
    services = start_fakes(confluence_store=ConfluenceStore([samples.pages[i] for i in kept]))
    services.confluence_store.upsert(
        SECRET_ID, space="ADM", title=SECRET_TITLE, body=SECRET_BODY, parent_id="1002001"
    )
    services.confluence_store.pages[SECRET_ID].read_groups = [GROUP]
    yield services
    services.stop()


@pytest.fixture
def settings(kb_settings: Settings, fakes: FakeServices) -> Settings:
    # Confluence only: no Jira issues, no ticket ingest (the bot still answers).
    confluence_and_pyrus = {k: v for k, v in fakes.env().items() if not k.startswith("KB_JIRA")}
    return kb_settings.with_env(
        {
            **confluence_and_pyrus,
            "KB_PYRUS_FORM_IDS": "",
            "KB_EVAL_GATE": "false",
            "KB_HTTP_BACKOFF_MAX_S": "0.2",
        }
    )


@pytest.fixture
def ingested(settings: Settings, database: Database) -> dict[str, dict[str, object]]:
    return run_ingest(settings, None)


def _secret_doc(database: Database) -> int:
    with database.connection() as conn:
        row = conn.execute(
            "SELECT id FROM documents WHERE source = 'confluence' AND external_id = %s",
            (SECRET_ID,),
        ).fetchone()
    assert row is not None
    return int(row[0])


def _found(
    settings: Settings, database: Database, groups: frozenset[str] | None, k: int = 10
) -> list[str]:
    embedder = query_embedder(settings)
    with database.connection() as conn:
        hits = search(conn, embedder, QUESTION, SearchOptions(k=k, reader_groups=groups))
    return [hit.external_id for hit in hits]


def test_inherited_restrictions_keep_only_the_groups_common_to_every_level():
    def page(pid: str, groups: frozenset[str] | None, *ancestors: str) -> ConfluencePage:
        return ConfluencePage(
            pid, "ADM", pid, 1, None, "", None, read_groups=groups, ancestor_ids=ancestors
        )

    pages = [
        page("1", None),
        page("2", frozenset({"l2", "admins"}), "1"),
        page("3", frozenset({"admins", "hr"}), "1", "2"),
        page("4", frozenset(), "1"),  # restricted to named users only
    ]
    lookups: list[str] = []

    def lookup(page_id: str) -> frozenset[str] | None:
        lookups.append(page_id)
        return frozenset({"ops"})

    access = effective_access(pages, {"ADM": frozenset({"staff", "admins", "l2"})}, lookup)
    assert access == {
        "1": frozenset({"staff", "admins", "l2"}),
        "2": frozenset({"l2", "admins"}),
        "3": frozenset({"admins"}),
        "4": frozenset(),
    }
    # an ancestor not among the pages is read from Confluence, once
    orphan = page("5", None, "99")
    assert effective_access([orphan, orphan], {}, lookup) == {"5": frozenset({"ops"})}
    assert lookups == ["99"]


def test_a_restricted_page_is_found_only_by_readers_in_its_group(
    settings: Settings, ingested, database
):
    with database.connection() as conn:
        groups, origin = conn.execute(
            "SELECT groups, origin FROM document_access WHERE document_id = %s",
            (_secret_doc(database),),
        ).fetchone()
    assert (groups, origin) == ([GROUP], "confluence")
    assert SECRET_ID in _found(settings, database, None)[:3]  # the pipeline's own view: everything
    assert SECRET_ID in _found(settings, database, frozenset({GROUP, "kb-agents"}))[:3]
    outside = _found(settings, database, frozenset({"kb-agents"}), k=50)
    assert SECRET_ID not in outside and outside  # other pages are still found
    assert SECRET_ID not in _found(settings, database, frozenset(), k=50)


def test_a_lifted_restriction_reaches_search_without_a_new_version(
    settings: Settings, ingested, fakes: FakeServices, database
):
    store = fakes.confluence_store
    version = store.pages[SECRET_ID].version
    store.pages[SECRET_ID].read_groups = None  # no new page version, as in Confluence
    run_ingest(settings, None)
    assert store.pages[SECRET_ID].version == version
    assert SECRET_ID in _found(settings, database, frozenset({"kb-agents"}))[:3]
    store.pages[SECRET_ID].read_groups = ["hr"]
    run_ingest(settings, None)
    assert SECRET_ID not in _found(settings, database, frozenset({GROUP}), k=50)


def _console(settings: Settings, groups: str) -> dict[str, str]:
    return {"X-Forwarded-User": "someone", "X-Forwarded-Groups": groups}


def test_console_search_answer_and_sources_respect_the_readers_groups(
    settings: Settings, ingested, database: Database
):
    header_auth = settings.with_overrides(console={"auth": "header"})
    outside = _console(header_auth, "kb-agents")
    inside = _console(header_auth, f"kb-agents,{GROUP}")
    with TestClient(create_app(header_auth)) as client:
        found = client.get("/api/search", params={"q": QUESTION, "k": 50}, headers=outside)
        assert found.status_code == 200
        assert SECRET_ID not in [hit["external_id"] for hit in found.json()]
        answer = client.post(
            "/api/answer", json={"question": QUESTION, "k": 10}, headers=outside
        ).json()
        assert SECRET_ID not in [s["external_id"] for s in answer["sources"]]
        secret_doc = _secret_doc(database)
        assert secret_doc not in (answer["answer"] or {}).get("cited", [])
        assert "Альбатрос" not in json.dumps(answer, ensure_ascii=False).replace(QUESTION, "")
        page = client.get("/", params={"q": QUESTION}, headers=outside)
        assert SECRET_TITLE not in page.text

        found = client.get("/api/search", params={"q": QUESTION}, headers=inside).json()
        assert found[0]["external_id"] == SECRET_ID
        answer = client.post("/api/answer", json={"question": QUESTION}, headers=inside).json()
        assert answer["sources"][0]["external_id"] == SECRET_ID
        assert secret_doc in answer["answer"]["cited"]


def _answer_ticket(
    fakes: FakeServices, database: Database, settings: Settings
) -> tuple[str, list[dict[str, Any]]]:
    task = fakes.pyrus_store.create_task(
        {
            "form_id": TICKETS_FORM,
            "subject": "Доступ в серверную",
            "fields": [
                {"id": 1, "code": "u_subject", "type": "text", "value": "Доступ в серверную"},
                {"id": 2, "code": "u_description", "type": "text", "value": QUESTION},
            ],
            "text": QUESTION,
        }
    )
    task_id = int(task["id"])
    with database.connection() as conn:
        jobs.enqueue(conn, task_id, None, "new_ticket")
        job = jobs.claim(conn, "test", 60)
        assert job is not None and job.task_id == task_id
        ctx = bot_context(settings)
        process_job(conn, job, ctx)
        (retrieved,) = conn.execute(
            "SELECT retrieved FROM bot_interactions WHERE task_id = %s", (task_id,)
        ).fetchone()
    comment = next(p for p in fakes.pyrus_store.posted if p["task_id"] == task_id)
    return json.dumps(comment, ensure_ascii=False), retrieved


def test_the_bot_never_cites_what_its_forms_audience_may_not_read(
    settings: Settings, ingested, fakes: FakeServices, database: Database
):
    secret_doc = _secret_doc(database)
    agents_only = settings.with_overrides(pyrus={"form_groups": f"{TICKETS_FORM}:kb-agents"})
    comment, retrieved = _answer_ticket(fakes, database, agents_only)
    assert secret_doc not in [item["doc_id"] for item in retrieved]
    assert SECRET_TITLE not in comment and "Альбатрос" not in comment.replace(QUESTION, "")
    # a form read by the group: the bot may cite the page
    with_group = settings.with_overrides(pyrus={"form_groups": f"{TICKETS_FORM}:kb-agents,{GROUP}"})
    comment, retrieved = _answer_ticket(fakes, database, with_group)
    assert secret_doc in [item["doc_id"] for item in retrieved]


def test_tickets_of_a_restricted_form_are_readable_by_its_groups_only(database: Database):
    from kb_core.index.access import apply_form_access
    from kb_core.index.documents import sync_source
    from kb_core.models import SourceDocument

    def ticket(task_id: int, form: int) -> SourceDocument:
        return SourceDocument(
            source="pyrus",
            external_id=str(task_id),
            title=f"Заявка {task_id}",
            raw_format="markdown",
            raw_body=f"# Заявка {task_id}\n",
            metadata={"form_id": form},
        )

    def access() -> dict[str, list[str]]:
        with database.connection() as conn:
            rows = conn.execute(
                "SELECT d.external_id, a.groups FROM documents d "
                "JOIN document_access a ON a.document_id = d.id WHERE d.source = 'pyrus'"
            ).fetchall()
        return dict(rows)

    with database.connection() as conn:
        sync_source(conn, "pyrus", [ticket(1, 321), ticket(2, 321), ticket(3, 400)])
        apply_form_access(conn, "pyrus", form_audiences("321:support-l1,support-l2"))
    assert access() == {"1": ["support-l1", "support-l2"], "2": ["support-l1", "support-l2"]}
    # a changed setting reaches tickets indexed long ago; an unlisted form opens them
    with database.connection() as conn:
        apply_form_access(conn, "pyrus", form_audiences("400:billing"))
    assert access() == {"3": ["billing"]}
    with pytest.raises(ValueError, match="KB_PYRUS_FORM_GROUPS"):
        form_audiences("321")
