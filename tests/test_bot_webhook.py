"""The webhook route and the job queue: signatures, triggers, dedupe, leases, dead letters."""

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from bot_api.app import create_app
from kb_core.bot import jobs
from kb_core.bot.webhook import (
    MARKER_WITHIN_CHARS,
    correction_text,
    decide,
    parse_event,
    valid_signature,
)
from kb_core.db import Database
from kb_core.settings import Settings
from kb_fakes.pyrus import sign

KEY = "bot-secret-key"
BOT_ID = 9000
SAMPLE = Path(__file__).resolve().parent / "pyrus_samples" / "01-bot-webhook-event.pyrusapi-go.json"


def _event(comments: list[dict[str, Any]], **task: Any) -> dict[str, Any]:
    return {
        "event": "comment",
        "access_token": "t",
        "task_id": 77,
        "user_id": BOT_ID,
        "bot_settings": "",
        "task": {"id": 77, "create_date": "2026-11-20T10:00:00Z", "comments": comments, **task},
    }


def _comment(cid: int, when: str, author: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": cid, "create_date": when, "author": author, "text": "…", **extra}


CUSTOMER = {"id": 501, "type": "user"}
AGENT = {"id": 502, "type": "user"}
FIRST = _comment(1, "2026-11-20T10:00:00Z", CUSTOMER)


def test_signature_is_hmac_sha1_of_the_raw_body():
    body = b'{"a": 1}'
    assert valid_signature(body, sign(body, KEY), KEY)
    assert valid_signature(body, sign(body, KEY).upper(), KEY)
    assert not valid_signature(body + b" ", sign(body, KEY), KEY)
    assert not valid_signature(body, None, KEY) and not valid_signature(body, "ab", "")


def test_real_shaped_sample_parses():
    event = parse_event(SAMPLE.read_bytes())
    assert event.task_id == event.task.id == 123456


@pytest.mark.parametrize(
    ("comments", "expected"),
    [
        ([FIRST], ("new_ticket", 1)),
        ([FIRST, _comment(2, "2026-11-20T11:00:00Z", AGENT, mentions=[BOT_ID])], ("mention", 2)),
        (
            [FIRST, _comment(2, "2026-11-20T11:00:00Z", AGENT, mentions=[{"id": BOT_ID}])],
            ("mention", 2),
        ),
        ([FIRST, _comment(2, "2026-11-20T11:00:00Z", AGENT)], (None, None)),
        ([FIRST, _comment(2, "2026-11-20T11:00:00Z", {"id": BOT_ID, "type": "bot"})], (None, None)),
        (
            [
                FIRST,
                _comment(2, "2026-11-20T11:00:00Z", {"id": 9001, "type": "bot"}, mentions=[BOT_ID]),
            ],
            (None, None),
        ),
    ],
    ids=["new", "mention", "mention-object", "plain-comment", "own-comment", "other-bot"],
)
def test_trigger_decision(comments, expected):
    decision = decide(parse_event(json.dumps(_event(comments)).encode()), [BOT_ID, 9001])
    assert (decision.trigger, decision.comment_id) == expected


def test_other_events_are_ignored():
    payload = _event([FIRST])
    payload["event"] = "close"
    assert decide(parse_event(json.dumps(payload).encode()), [BOT_ID]).trigger is None


@pytest.fixture
def bot_settings(kb_settings: Settings) -> Settings:
    return kb_settings.with_env(
        {
            "KB_PYRUS_SECURITY_KEY": KEY,
            "KB_PYRUS_BOT_IDS": str(BOT_ID),
            "KB_BOT_WEBHOOK_MAX_BYTES": "4096",
        }
    )


@pytest.fixture
def client(bot_settings: Settings, database: Database):
    with TestClient(create_app(bot_settings)) as test_client:
        yield test_client


def _post(client: TestClient, payload: Any, *, signature: str | None = None) -> Any:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return client.post(
        "/pyrus/webhook",
        content=raw,
        headers={"X-Pyrus-Sig": signature or sign(raw, KEY), "Content-Type": "application/json"},
    )


def _jobs(database: Database) -> list[tuple]:
    with database.connection() as conn:
        return conn.execute("SELECT task_id, comment_id, trigger, status FROM bot_jobs").fetchall()


def _webhook_counts(client: TestClient) -> dict[str, float]:
    """Webhook counters as /metrics exposes them (process-wide: compare differences)."""
    counts = {"queued": 0.0, "duplicate": 0.0}
    for line in client.get("/metrics").text.splitlines():
        for outcome in counts:
            if line.startswith(f'kb_bot_webhooks_total{{outcome="{outcome}"}}'):
                counts[outcome] = float(line.split()[-1])
    return counts


def test_webhook_stores_one_job_and_replays_change_nothing(client, database):
    before = _webhook_counts(client)
    payload = _event([FIRST])
    first = _post(client, payload)
    assert first.status_code == 200 and first.json() == {}
    assert _post(client, payload).json() == {}  # Pyrus' retry after 61 s
    assert _jobs(database) == [(77, 1, "new_ticket", "queued")]
    mention = copy.deepcopy(payload)
    mention["task"]["comments"].append(
        _comment(2, "2026-11-20T11:00:00Z", AGENT, mentions=[BOT_ID])
    )
    assert _post(client, mention).status_code == 200
    assert len(_jobs(database)) == 2
    after = _webhook_counts(client)
    assert after["queued"] - before["queued"] == 2
    assert after["duplicate"] - before["duplicate"] == 1


def test_bad_webhooks_are_rejected_with_a_reason_and_store_nothing(client, database):
    payload = _event([FIRST])
    wrong = _post(client, payload, signature=sign(b"other", KEY))
    assert wrong.status_code == 401 and "X-Pyrus-Sig" in wrong.json()["detail"]
    broken = _post(client, b"{not json")
    assert broken.status_code == 400 and "not JSON" in broken.json()["detail"]
    missing = _post(client, {"event": "comment", "task": {"id": 1}})
    assert missing.status_code == 400 and "task_id" in missing.json()["detail"]
    huge = _post(client, _event([FIRST], text="x" * 5000))
    assert huge.status_code == 413
    assert _jobs(database) == []


def test_jobs_lease_retry_and_dead_letter(database):
    with database.connection() as conn:
        job_id = jobs.enqueue(conn, 5, 10, "new_ticket")
        assert jobs.enqueue(conn, 5, 10, "new_ticket") is None
        job = jobs.claim(conn, "w1", lease_s=60)
        assert job is not None and job.id == job_id and job.attempts == 1
        assert jobs.claim(conn, "w2", lease_s=60) is None  # leased to w1
        # w1 dies: once the lease has expired another worker takes the job
        conn.execute("UPDATE bot_jobs SET lease_until = now() - interval '1 s'")
        again = jobs.claim(conn, "w2", lease_s=60)
        assert again is not None and again.id == job_id and again.attempts == 2
        assert jobs.fail(conn, again, "boom", max_attempts=3, backoff_s=0) == "queued"
        third = jobs.claim(conn, "w2", lease_s=60)
        assert third is not None and third.attempts == 3
        assert jobs.fail(conn, third, "RuntimeError: boom", max_attempts=3, backoff_s=0) == "dead"
        assert jobs.claim(conn, "w3", lease_s=60) is None
        row = conn.execute("SELECT status, last_error FROM bot_jobs").fetchone()
        assert row == ("dead", "RuntimeError: boom")
        assert jobs.counts(conn) == {"dead": 1}


def test_failed_job_waits_for_its_backoff(database):
    with database.connection() as conn:
        jobs.enqueue(conn, 6, 11, "mention")
        job = jobs.claim(conn, "w1", lease_s=60)
        jobs.fail(conn, job, "boom", max_attempts=5, backoff_s=30)
        assert jobs.claim(conn, "w1", lease_s=60) is None
        delay = conn.execute("SELECT run_after - now() FROM bot_jobs").fetchone()[0]
        assert 25 < delay.total_seconds() <= 30


def test_query_of_a_mention_is_the_whole_conversation_without_bots():
    from kb_core.bot.query import build_query
    from kb_core.sources.pyrus_tasks import TicketFields

    task = {
        "id": 1,
        "fields": [
            {"id": 1, "code": "u_subject", "type": "text", "value": "Не приходят письма"},
            {"id": 2, "code": "u_description", "type": "text", "value": "Письма пропали."},
        ],
        "comments": [
            {"id": 10, "text": "Письма пропали.", "author": CUSTOMER},
            {"id": 11, "text": "Ответ бота", "author": {"id": BOT_ID, "type": "bot"}},
            {"id": 12, "text": "Пишу с ошибкой", "author": AGENT},
            {"id": 13, "text": "Проверили DKIM", "author": AGENT, "edit_comment_id": 12},
            {"id": 14, "text": "Удалённое", "author": AGENT},
            {"id": 15, "author": AGENT, "delete_comment_id": 14},
        ],
    }
    fields = TicketFields()
    # the ticket's question first; the first comment repeats the description
    new_ticket = build_query(task, "new_ticket", fields, [BOT_ID])
    assert new_ticket.startswith("Не приходят письма\nПисьма пропали.")
    assert new_ticket.count("Письма пропали.") == 1
    mention = build_query(task, "mention", fields, [BOT_ID])
    assert "Проверили DKIM" in mention
    assert "Ответ бота" not in mention and "Удалённое" not in mention
    assert "Пишу с ошибкой" not in mention


def test_a_live_worker_keeps_its_lease(database):
    import time

    from kb_core.bot.worker import _lease_kept

    with database.connection() as conn:
        jobs.enqueue(conn, 7, 12, "new_ticket")
        job = jobs.claim(conn, "w1", lease_s=0.6)
        with _lease_kept(database.connection, job, "w1", 0.6):
            time.sleep(1.5)  # longer than the lease: renewals keep it
            assert jobs.claim(conn, "w2", lease_s=0.6) is None
        time.sleep(1.0)  # the worker is gone: the lease runs out
        taken = jobs.claim(conn, "w2", lease_s=60)
        assert taken is not None and taken.id == job.id


# -- corrections of the bot's answer ----------------------------------------------------

MARKERS = ["исправление", "поправка", "correction"]
WRONG_FIELD = "u_bot_answer_wrong"
TICKET_FIELDS = [
    {"id": 7, "code": "u_solution_confirmed", "type": "checkmark", "name": "Решение подтверждено"},
    {"id": 8, "code": WRONG_FIELD, "type": "checkmark", "name": "Ответ бота неверен"},
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@Бот исправление: включите канал «Почта»", "включите канал «Почта»"),
        ("@Бот ИСПРАВЛЕНИЕ — Включите канал", "Включите канал"),
        ("Бот, поправка: лимит 5000 запросов", "лимит 5000 запросов"),
        ("@Бот Correction: call POST /auth again", "call POST /auth again"),
        ("@Бот исправление:\n\nПервая строка.\nВторая строка.", "Первая строка.\nВторая строка."),
        ("@Бот исправление", ""),
        ("@Бот исправление: —  ", ""),
        ("@Бот спасибо, всё верно", None),
        ("@Бот исправлением займусь позже", None),  # the marker inside another word
        ("@Бот неисправление", None),
        ("@Бот " + "очень длинное вступление " * 3 + "исправление: ответ", None),
        ("", None),
    ],
    ids=[
        "colon",
        "case-and-dash",
        "second-marker",
        "latin-marker",
        "multiline",
        "marker-alone",
        "marker-and-punctuation",
        "no-marker",
        "longer-word",
        "prefixed-word",
        "too-far-in",
        "empty",
    ],
)
def test_correction_text_after_the_marker(text, expected):
    assert correction_text(text, MARKERS) == expected


def test_correction_marker_counts_up_to_its_distance_from_the_start():
    at_limit = "x" * (MARKER_WITHIN_CHARS - 1) + " исправление: ответ"
    assert correction_text(at_limit, MARKERS) == "ответ"
    assert correction_text("x" + at_limit, MARKERS) is None
    assert correction_text("@Бот исправление: ответ", []) is None  # no markers configured


def _decision(comment: dict[str, Any], *, fields: list[dict[str, Any]] | None = None, **options):
    payload = _event([FIRST, comment], fields=fields if fields is not None else TICKET_FIELDS)
    return decide(
        parse_event(json.dumps(payload).encode()),
        [BOT_ID, 9001],
        **({"correction_markers": MARKERS, "wrong_answer_field": WRONG_FIELD} | options),
    )


def _tick(value: Any, **update: Any) -> list[dict[str, Any]]:
    return [{"id": 8, "type": "checkmark", "value": value, **update}]


WHEN = "2026-11-20T11:00:00Z"


def test_a_mention_with_a_marker_is_a_correction():
    comment = _comment(2, WHEN, AGENT, mentions=[BOT_ID], text="@Бот исправление: включите DKIM")
    decision = _decision(comment)
    assert (decision.trigger, decision.comment_id) == ("correction", 2)
    plain = _comment(2, WHEN, AGENT, mentions=[BOT_ID], text="@Бот что с этой заявкой?")
    assert (_decision(plain).trigger, _decision(plain).comment_id) == ("mention", 2)
    # a marker counts only where corrections are configured, and only with a mention
    assert _decision(comment, correction_markers=()).trigger == "mention"
    unmentioned = _comment(2, WHEN, AGENT, text="исправление: включите DKIM")
    assert _decision(unmentioned).trigger is None


def test_a_formatted_text_only_comment_is_read():
    comment = {
        "id": 3,
        "create_date": WHEN,
        "author": AGENT,
        "mentions": [BOT_ID],
        "formatted_text": "<p><a href='#'>@Бот</a> <b>Исправление</b>: включите DKIM</p>",
    }
    assert _decision(comment).trigger == "correction"
    comment["formatted_text"] = "<p><a href='#'>@Бот</a> подскажите по заявке</p>"
    assert _decision(comment).trigger == "mention"


def test_ticking_the_wrong_answer_field_is_a_correction():
    by_id = _comment(2, WHEN, AGENT, text="", field_updates=_tick("checked"))
    decision = _decision(by_id)
    assert (decision.trigger, decision.comment_id) == ("correction", 2)
    by_code = _comment(2, WHEN, AGENT, field_updates=[{"code": WRONG_FIELD, "value": "checked"}])
    assert _decision(by_code, fields=[]).trigger == "correction"
    with_text = _comment(2, WHEN, AGENT, text="Правильно так", field_updates=_tick("checked"))
    assert _decision(with_text).trigger == "correction"


@pytest.mark.parametrize(
    ("comment", "options"),
    [
        (_comment(2, WHEN, {"id": 9001, "type": "bot"}, field_updates=_tick("checked")), {}),
        (_comment(2, WHEN, {"id": BOT_ID, "type": "user"}, field_updates=_tick("checked")), {}),
        (_comment(2, WHEN, AGENT, field_updates=_tick("unchecked")), {}),
        (_comment(2, WHEN, AGENT, field_updates=[{"id": 8, "type": "checkmark"}]), {}),
        (_comment(2, WHEN, AGENT, field_updates=[{"id": 7, "value": "checked"}]), {}),
        (_comment(2, WHEN, AGENT, field_updates=_tick("checked")), {"wrong_answer_field": None}),
    ],
    ids=["other-bot", "own-id", "unticked", "no-value", "other-field", "not-configured"],
)
def test_field_updates_that_are_not_a_correction(comment, options):
    assert _decision(comment, **options).trigger is None


def test_unticking_with_a_mention_is_a_mention_not_a_correction():
    comment = _comment(
        2,
        WHEN,
        AGENT,
        text="@Бот ответь ещё раз",
        mentions=[BOT_ID],
        field_updates=_tick("unchecked"),
    )
    assert _decision(comment).trigger == "mention"
