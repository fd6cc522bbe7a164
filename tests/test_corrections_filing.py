"""Filing an agent's correction as an «Актуализация RAG» task, end to end over real HTTP
(the fake Pyrus) and the real database, and the curated entry it becomes once approved."""

import copy
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kb_core.bot import jobs
from kb_core.bot.corrections import CorrectionFiling, Filed, file_correction
from kb_core.settings import Settings
from kb_core.sources.http import RetryPolicy
from kb_core.sources.pyrus import PyrusClient
from kb_core.sources.pyrus_tasks import (
    CorrectionDocumentBuilder,
    CorrectionFields,
    TicketFields,
    field_by_code,
    field_text,
)
from kb_core.texts import load_texts
from kb_fakes.pyrus import BOT_LOGIN, BOT_SECURITY_KEY, PyrusStore, create_pyrus_app
from kb_fakes.server import ServerThread

FAST = RetryPolicy(attempts=3, backoff_initial_s=0.01, backoff_max_s=0.1)
TICKET = 200001  # a sample ticket: «API возвращает 401 expired_token …»
CORRECTIONS_FORM = 322
BOT_ID = 9000
AGENT = {"id": 1104, "first_name": "Денис", "last_name": "Мамонтов", "type": "user"}
OWNER = {"id": 1106, "first_name": "Руслан", "last_name": "Ефремов", "type": "user"}
DRAFT = "Здравствуйте! Получите новый токен через POST /auth."
CORRECTED = "правильный ответ: отдельного refresh token нет, при 401 войдите заново"
TASK_URL = "https://pyrus.example/t#id{id}"


class Fake:
    def __init__(self, server: ServerThread, store: PyrusStore, client: PyrusClient) -> None:
        self.server, self.store, self.client = server, store, client

    def comment(self, task_id: int, **body: Any) -> int:
        """A person's comment (not the bot's), as Pyrus would add it; its id."""
        answer = httpx.post(f"{self.server.url}/_admin/tasks/{task_id}/comments", json=body)
        answer.raise_for_status()
        return int(answer.json()["comment"]["id"])

    def created(self) -> list[dict[str, Any]]:
        answer = httpx.get(f"{self.server.url}/_admin/created")
        answer.raise_for_status()
        return list(answer.json())


@pytest.fixture
def fake() -> Iterator[Fake]:
    store = PyrusStore.from_samples()
    with ServerThread(create_pyrus_app(store)) as server:
        url = f"{server.url}/v4"
        with PyrusClient(
            login=BOT_LOGIN, security_key=BOT_SECURITY_KEY, api_url=url, auth_url=url, policy=FAST
        ) as client:
            yield Fake(server, store, client)


def _filing(form_id: int | None = CORRECTIONS_FORM) -> CorrectionFiling:
    """As kb_core.bot.context builds it from the (default) settings."""
    settings = Settings.defaults()
    return CorrectionFiling(
        form_id=form_id,
        fields=CorrectionFields(),
        markers=settings.bot.correction_markers,
        task_url=TASK_URL,
        texts=load_texts(settings.bot.texts_path),
    )


def _answered(conn: Any, task_id: int, drafts: list[str]) -> None:
    """The bot's earlier answers to the ticket (the last one is the draft in question)."""
    for number, draft in enumerate(drafts, 1):
        job_id = jobs.enqueue(conn, task_id, number, "new_ticket" if number == 1 else "mention")
        conn.execute(
            "INSERT INTO bot_interactions (job_id, task_id, trigger, query, retrieved, answer, "
            "mode) VALUES (%s, %s, 'new_ticket', 'вопрос', '[]', %s, 'extractive')",
            (job_id, task_id, json.dumps({"draft_reply": draft, "category": "Интеграции и API"})),
        )


def _file(conn: Any, fake: Fake, job_id: int, comment_id: int, **options: Any) -> Filed:
    return file_correction(
        conn,
        fake.client,
        options.pop("filing", None) or _filing(),
        job_id=job_id,
        task=fake.client.get_task(TICKET),
        comment_id=comment_id,
        ticket_fields=TicketFields(),
        **options,
    )


def _requests(conn: Any) -> list[tuple]:
    return conn.execute(
        "SELECT job_id, ticket_id, correction_task_id, reason FROM correction_requests ORDER BY id"
    ).fetchall()


def _expected_question(store: PyrusStore) -> str:
    ticket = store.tasks[TICKET]
    return "\n".join(
        [field_text(ticket, "u_subject").strip(), field_text(ticket, "u_description").strip()]
    )


def test_a_mention_correction_is_filed_once_and_becomes_a_curated_entry(fake, database):
    comment_id = fake.comment(
        TICKET, author=AGENT, text=f"@Бот исправление: {CORRECTED}", mentions=[BOT_ID]
    )
    with database.connection() as conn:
        _answered(conn, TICKET, ["Старый черновик", DRAFT])
        job_id = jobs.enqueue(conn, TICKET, comment_id, "correction")
        assert job_id is not None
        filed = _file(conn, fake, job_id, comment_id)
        assert filed.reason == "mention" and not filed.already
        assert filed.correction_task_id is not None
        created = fake.created()
        assert [c["task_id"] for c in created] == [filed.correction_task_id]
        assert created[0]["request"]["form_id"] == CORRECTIONS_FORM
        task = fake.client.get_task(filed.correction_task_id)
        assert task["form_id"] == CORRECTIONS_FORM and not task["is_closed"]
        assert field_text(task, "u_question") == _expected_question(fake.store)
        assert field_text(task, "u_question").startswith("API возвращает 401 expired_token")
        assert field_text(task, "u_bot_answer") == DRAFT  # the last draft, not an older one
        assert field_text(task, "u_corrected_answer") == CORRECTED
        ticket_link = field_by_code(task, "u_ticket")
        assert ticket_link is not None and ticket_link["value"] == {"task_ids": [TICKET]}
        assert field_by_code(task, "u_decision") is None
        assert TASK_URL.format(id=TICKET) in task["comments"][0]["text"]
        assert _requests(conn) == [(job_id, TICKET, filed.correction_task_id, "mention")]

        again = _file(conn, fake, job_id, comment_id)  # the job retried
        assert again == Filed(filed.correction_task_id, "mention", True)
        assert len(fake.created()) == 1 and len(_requests(conn)) == 1

    builder = CorrectionDocumentBuilder(task_url=TASK_URL)
    assert builder.document(fake.client.get_task(filed.correction_task_id)) is None
    fake.comment(
        filed.correction_task_id,
        author=OWNER,
        text="Проверил, согласовано.",
        field_updates=[{"id": 6, "value": {"choice_ids": [1], "choice_names": ["Одобрено"]}}],
        action="finished",
    )
    approved = fake.client.get_task(filed.correction_task_id)
    assert approved["is_closed"]
    document = builder.document(approved)
    assert document is not None
    assert document.source == "correction"
    assert document.external_id == str(filed.correction_task_id)
    # The entry's title is the ticket's subject; its body is the corrected answer.
    subject = _expected_question(fake.store).partition("\n")[0]
    assert document.title == subject
    assert document.raw_body == f"# {subject}\n\n{CORRECTED}\n"
    assert CORRECTED in document.raw_body and DRAFT not in document.raw_body
    assert document.url == TASK_URL.format(id=filed.correction_task_id)
    assert document.metadata["ticket_ids"] == [TICKET]
    assert document.metadata["supersedes"] is None
    assert document.metadata["approved_at"] == approved["close_date"]


def test_a_rejected_correction_is_no_entry(fake, database):
    comment_id = fake.comment(
        TICKET, author=AGENT, text=f"@Бот поправка — {CORRECTED}", mentions=[BOT_ID]
    )
    with database.connection() as conn:
        _answered(conn, TICKET, [DRAFT])
        job_id = jobs.enqueue(conn, TICKET, comment_id, "correction")
        filed = _file(conn, fake, job_id, comment_id)
    fake.comment(
        filed.correction_task_id,
        author=OWNER,
        field_updates=[{"id": 6, "value": {"choice_ids": [2], "choice_names": ["Отклонено"]}}],
        action="finished",
    )
    assert (
        CorrectionDocumentBuilder().document(fake.client.get_task(filed.correction_task_id)) is None
    )


def test_ticking_the_field_files_what_the_agent_wrote(fake, database):
    comment_id = fake.comment(
        TICKET,
        author=AGENT,
        text="Токен живёт до отзыва, перелогин по 401",
        field_updates=[{"id": 8, "value": "checked"}],
    )
    with database.connection() as conn:
        job_id = jobs.enqueue(conn, TICKET, comment_id, "correction")
        filed = _file(conn, fake, job_id, comment_id)  # the bot never answered here
        assert filed.reason == "field" and filed.correction_task_id is not None
        task = fake.client.get_task(filed.correction_task_id)
        assert field_text(task, "u_corrected_answer") == "Токен живёт до отзыва, перелогин по 401"
        assert field_by_code(task, "u_bot_answer") is None  # no draft: the field is left empty
        assert _requests(conn) == [(job_id, TICKET, filed.correction_task_id, "field")]


def test_without_a_corrections_form_nothing_is_filed(fake, database):
    comment_id = fake.comment(
        TICKET, author=AGENT, text=f"@Бот исправление: {CORRECTED}", mentions=[BOT_ID]
    )
    with database.connection() as conn:
        _answered(conn, TICKET, [DRAFT])
        job_id = jobs.enqueue(conn, TICKET, comment_id, "correction")
        filed = _file(conn, fake, job_id, comment_id, filing=_filing(form_id=None))
        assert filed == Filed(None, "mention", False)
        assert fake.created() == [] and _requests(conn) == []


def test_a_form_lacking_a_field_is_an_error_naming_it(fake, database):
    form = copy.deepcopy(fake.store.forms[CORRECTIONS_FORM])
    form["id"] = 323
    form["fields"] = [f for f in form["fields"] if f["code"] != "u_corrected_answer"]
    fake.store.forms[323] = form
    comment_id = fake.comment(
        TICKET, author=AGENT, text=f"@Бот исправление: {CORRECTED}", mentions=[BOT_ID]
    )
    with database.connection() as conn:
        _answered(conn, TICKET, [DRAFT])
        job_id = jobs.enqueue(conn, TICKET, comment_id, "correction")
        with pytest.raises(ValueError, match="u_corrected_answer") as error:
            _file(conn, fake, job_id, comment_id, filing=_filing(form_id=323))
        assert "323" in str(error.value)
        assert "u_question" not in str(error.value)
        assert fake.created() == [] and _requests(conn) == []
