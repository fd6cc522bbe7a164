"""Issue 20: the bot keeps working through faults and hostile input.

One test (or a few) per finding of the reliability probe, each against the real parts:
the embedded PostgreSQL, the fake Pyrus over HTTP, the FastAPI app. The end-to-end
scenarios with separate processes (database restart, kill -9, a proxy losing replies)
are the fault suite, ``tests/faults/``.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from bot_api.app import create_app
from kb_core.bot import jobs
from kb_core.bot import worker as bot_worker
from kb_core.bot.jobs import Job
from kb_core.db import Database, DatabaseError
from kb_core.generation import generate
from kb_core.generation.llm import ChatReply
from kb_core.generation.prompt import SYSTEM_PROMPT
from kb_core.models import SearchHit
from kb_core.settings import Settings
from kb_core.sources.http import ApiHttp, RetryPolicy, SourceHTTPError, retry_delay
from kb_core.sources.pyrus import PyrusClient
from kb_core.text.limits import INT64_MAX, clean_text, clip, json_depth_exceeds, windows
from kb_fakes.pyrus import BOT_LOGIN, BOT_SECURITY_KEY, PyrusStore, create_pyrus_app, sign
from kb_fakes.server import ServerThread
from tests.conftest import BASE, process_env
from tests.test_effect_assets import effect_env  # noqa: F401  (a fixture used here)

KEY = "bot-secret-key"
BOT_ID = 9000


def _job(job_id: int, task_id: int = 1) -> Job:
    from datetime import UTC, datetime

    return Job(job_id, task_id, 1, "new_ticket", 1, datetime.now(UTC))


def _wait(condition: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


# -- finding 1: a database error never ends the worker -------------------------------------


class FlakyConnect:
    """``Database.connection`` that fails like a restarting server for a while: the
    project's own DatabaseError (what a failed reconnect raises), then psycopg's."""

    def __init__(self, database: Database, failures: int) -> None:
        self.database = database
        self.failures = failures
        self.calls = 0

    def __call__(self) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            if self.calls % 2:
                raise DatabaseError("cannot connect to PostgreSQL: the server is restarting")
            raise psycopg.OperationalError("terminating connection due to administrator command")
        return self.database.connection()


def test_worker_survives_database_errors_and_keeps_claiming(database: Database):
    with database.connection() as conn:
        job_id = jobs.enqueue(conn, 41, 1, "new_ticket")
    flaky = FlakyConnect(database, failures=4)
    health = bot_worker.WorkerHealth()
    stop = threading.Event()

    def no_context() -> Any:
        raise RuntimeError("clients unavailable")  # the job fails, the worker goes on

    config = bot_worker.WorkerConfig(poll_s=0.05, max_attempts=1, backoff_s=0, db_backoff_max_s=0.2)
    thread = threading.Thread(
        target=bot_worker.run_worker,
        args=(flaky, no_context, stop, config),
        kwargs={"health": health},
    )
    health.threads.append(thread)
    thread.start()
    try:
        with database.connection() as conn:
            _wait(
                lambda: (
                    conn.execute("SELECT status FROM bot_jobs WHERE id = %s", (job_id,)).fetchone()[
                        0
                    ]
                    == "dead"
                )
            )
        assert thread.is_alive() and health.problem(stale_after_s=30) is None
    finally:
        stop.set()
        thread.join(timeout=10)
    assert flaky.calls > 4


@pytest.fixture
def bot_settings(kb_settings: Settings) -> Settings:
    return kb_settings.with_env({"KB_PYRUS_SECURITY_KEY": KEY, "KB_PYRUS_BOT_IDS": str(BOT_ID)})


def test_readyz_is_red_when_the_worker_thread_is_dead(bot_settings: Settings, database):
    health = bot_worker.WorkerHealth()
    dead = threading.Thread(target=lambda: None)
    dead.start()
    dead.join()
    health.threads.append(dead)
    with TestClient(create_app(bot_settings, worker_health=health)) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 503 and "worker" in answer.json()["detail"]


# -- finding 2: a stale pool after a restart; a fast 503 while the database is down --------


def _event(task_id: int, comment_id: int = 1) -> bytes:
    return json.dumps(
        {
            "event": "comment",
            "task_id": task_id,
            "user_id": BOT_ID,
            "task": {
                "id": task_id,
                "comments": [{"id": comment_id, "author": {"id": 501, "type": "user"}}],
            },
        }
    ).encode()


def _post(client: TestClient, raw: bytes, signature: str | bytes | None = None) -> httpx.Response:
    return client.post(
        "/pyrus/webhook",
        content=raw,
        headers={"X-Pyrus-Sig": signature or sign(raw, KEY), "Content-Type": "application/json"},
    )


def _terminate_others(server_url: str, database_url: str) -> None:
    """What a PostgreSQL restart does to a pool: every open connection is gone."""
    name = psycopg.conninfo.conninfo_to_dict(database_url)["dbname"]
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )


def test_pooled_connections_killed_by_a_restart_are_replaced(bot_settings, database, pg_server):
    with TestClient(create_app(bot_settings), raise_server_exceptions=False) as client:
        for task_id in (1, 2, 3):  # the pool now holds used connections
            assert _post(client, _event(task_id)).status_code == 200
        _terminate_others(pg_server, database.url)
        answers = [_post(client, _event(task_id)).status_code for task_id in range(10, 16)]
    assert answers == [200] * 6


def test_unreachable_database_is_a_503_not_a_500(bot_settings, database, pg_server):
    name = psycopg.conninfo.conninfo_to_dict(database.url)["dbname"]
    with TestClient(create_app(bot_settings), raise_server_exceptions=False) as client:
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            try:
                _terminate_others(pg_server, database.url)
                webhook = _post(client, _event(5))
                ready = client.get("/readyz")
            finally:
                admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        assert webhook.status_code == 503 and "database unavailable" in webhook.json()["detail"]
        assert ready.status_code == 503
        # Back: served again without a restart (Pyrus re-sends what got no 200).
        _wait(lambda: _post(client, _event(5)).status_code == 200, timeout=30)


# -- findings 3 and 4: exactly one comment under lost replies; markers as whole tokens -----


@pytest.fixture
def pyrus_fake() -> Iterator[tuple[ServerThread, PyrusStore]]:
    store = PyrusStore.from_samples()
    with ServerThread(create_pyrus_app(store)) as server:
        yield server, store


def _client(server: ServerThread) -> PyrusClient:
    url = f"{server.url}/v4"
    return PyrusClient(
        login=BOT_LOGIN,
        security_key=BOT_SECURITY_KEY,
        api_url=url,
        auth_url=url,
        policy=RetryPolicy(attempts=4, backoff_initial_s=0.01, error_backoff_initial_s=0.01),
    )


def _lose_replies(server: ServerThread, task_id: int, count: int) -> None:
    httpx.post(
        f"{server.url}/_admin/faults",
        json={
            "status": 502,
            "count": count,
            "path_contains": f"/tasks/{task_id}/comments",
            "lose_reply": True,
        },
    ).raise_for_status()


def test_a_lost_reply_to_the_comment_post_is_not_blindly_retried(pyrus_fake):
    server, store = pyrus_fake
    task_id = next(iter(store.tasks))
    _lose_replies(server, task_id, 1)
    with _client(server) as pyrus, pytest.raises(SourceHTTPError) as raised:
        pyrus.post_comment(task_id, formatted_text="<p>answer kb#7</p>")
    assert raised.value.ambiguous
    assert len([p for p in store.posted if p["task_id"] == task_id]) == 1


@pytest.mark.parametrize("lost", [1, 2, 3])
def test_lost_replies_give_exactly_one_comment(pyrus_fake, lost, monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda _s: None)
    server, store = pyrus_fake
    task_id = next(iter(store.tasks))
    _lose_replies(server, task_id, lost)
    job = _job(70 + lost, task_id)
    with _client(server) as pyrus:
        ctx = SimpleNamespace(pyrus=pyrus, bot_ids={BOT_ID, store.bot_id})
        task = bot_worker.post_exactly_once(ctx, job, f"<p>answer</p><p><i>kb#{job.id}</i></p>")  # type: ignore[arg-type]
    assert bot_worker._posted_comment_id(task, job, ctx.bot_ids) is not None
    assert len([p for p in store.posted if p["task_id"] == task_id]) == 1


def test_job_marker_is_matched_as_a_whole_token():
    job = _job(116)
    later = {
        "comments": [
            {"id": 5, "author": {"id": BOT_ID, "type": "bot"}, "text": "answer kb#1160"},
        ]
    }
    assert bot_worker._posted_comment_id(later, job, {BOT_ID}) is None
    assert bot_worker.has_marker("<p><i>kb#116</i></p>", job)
    assert bot_worker.has_marker("answer kb#116", job)
    assert not bot_worker.has_marker("<p><i>kb#1160</i></p>", job)
    assert not bot_worker.has_marker("kb#11", job)
    assert not bot_worker.has_marker("xkb#116", job)


# -- finding 5: a 1,000,000-character ticket ------------------------------------------------


def test_windows_join_back_and_respect_the_size():
    text = ("Иванов Пётр звонил с номера +7 912 345-67-89.\n" * 3000)[:100_000]
    pieces = list(windows(text, 5000))
    assert "".join(pieces) == text and max(map(len, pieces)) <= 5000
    assert len(clip("слово " * 10_000, 1000)) <= 1000


def test_scrubber_takes_text_longer_than_spacys_limit(monkeypatch):
    from kb_core.pii import scrubber as scrubber_module
    from kb_core.pii.scrubber import PiiConfig, Scrubber

    scrubber = Scrubber(PiiConfig())
    nlp = scrubber.analyzer.nlp_engine.nlp["ru"]
    # A small limit stands in for spaCy's 1,000,000 characters, windows for our 50,000.
    monkeypatch.setattr(nlp, "max_length", 20_000)
    monkeypatch.setattr(scrubber_module, "SCAN_WINDOW_CHARS", 8_000)
    line = "Клиент Иванов Пётр, телефон +7 912 345-67-89, не видит отчёт.\n"
    text = line * (60_000 // len(line))
    scrubbed = scrubber.scrub(text)
    assert "912 345" not in scrubbed and scrubbed.count("<PHONE>") == text.count("912")


def test_a_million_character_ticket_is_categorised_for_the_effect_report(
    request: pytest.FixtureRequest, fakes: Any, database: Database
):
    from datetime import datetime
    from datetime import time as day_time
    from zoneinfo import ZoneInfo

    from kb_assets.effect import ticket_categories
    from tests.test_effect_assets import TZ, _materialize, _outcomes, _yesterday

    settings = request.getfixturevalue("effect_env")  # the effect assets' fakes and settings
    huge = "Уведомления не приходят на почту. " + "очень длинное описание " * 43_500
    task = fakes.pyrus_store.create_task(
        {
            "form_id": 321,
            "fields": [
                {"id": 1, "code": "u_subject", "type": "text", "value": "Уведомления"},
                {"id": 2, "code": "u_description", "type": "text", "value": huge},
            ],
            "text": huge[:2000],
        }
    )
    day = _yesterday()
    filed = datetime.combine(day, day_time(12, 0), tzinfo=TZ).astimezone(ZoneInfo("UTC"))
    task["create_date"] = filed.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert len(huge) > 1_000_000
    assert _materialize([ticket_categories], settings, day).success
    assert _outcomes(database, day)[int(task["id"])]["category"]


# -- findings 6 and 10: hostile webhooks are 400/401 and counted; NUL never stored --------


def _bad_request_count(client: TestClient) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith('kb_bot_webhooks_total{outcome="bad_request"}'):
            return float(line.split()[-1])
    return 0.0


def _with(**changes: Any) -> bytes:
    event = json.loads(_event(9))
    comment = event["task"]["comments"][0]
    for key, value in changes.items():
        where, _, name = key.partition("__")
        target = {"event": event, "task": event["task"], "comment": comment}[where]
        if name == "author_id":
            comment["author"]["id"] = value
        else:
            target[name] = value
    return json.dumps(event).encode()


HOSTILE = {
    "deep-json": b'{"a":' * 1000 + b"1" + b"}" * 1000,
    "id-above-int64": _with(event__task_id=2**63, task__id=2**63),
    "comment-id-abc": _with(comment__id="abc"),
    "comment-id-null": _with(comment__id=None),
    "author-id-list": _with(comment__author_id=[1, 2]),
    "fields-not-objects": _with(task__fields=[1]),
    "field-updates-not-objects": _with(comment__field_updates=["x"]),
    "user-id-above-int64": _with(event__user_id=2**64),
}


@pytest.mark.parametrize("body", list(HOSTILE.values()), ids=list(HOSTILE))
def test_hostile_webhooks_are_400_with_a_reason_and_counted(bot_settings, database, body):
    with TestClient(create_app(bot_settings), raise_server_exceptions=False) as client:
        before = _bad_request_count(client)
        answer = _post(client, body)
        assert answer.status_code == 400, answer.text
        assert answer.json()["detail"]
        assert _bad_request_count(client) == before + 1
    with database.connection() as conn:
        assert conn.execute("SELECT count(*) FROM bot_jobs").fetchone()[0] == 0


def test_non_ascii_signature_is_401(bot_settings, database):
    with TestClient(create_app(bot_settings), raise_server_exceptions=False) as client:
        answer = _post(client, _event(3), signature="подпись".encode())
    assert answer.status_code == 401


def test_text_limits_remove_control_characters_and_see_depth():
    assert clean_text("a\x00b\x1bc\td\ne") == "abc\td\ne"
    assert json_depth_exceeds(b"[" * 65 + b"]" * 65, 64)
    assert not json_depth_exceeds(b'{"a": "[[[[[[[[[[[[[[[["}', 3)


# -- findings 7, 11, 12: the console's feedback and credentials ----------------------------

CORRECTIONS_FORM = 322


@pytest.fixture
def console(
    kb_settings: Settings, database: Database, pyrus_fake
) -> Iterator[tuple[TestClient, ServerThread, PyrusStore]]:
    server, store = pyrus_fake
    url = f"{server.url}/v4"
    settings = kb_settings.with_overrides(
        console={"password": SecretStr("пароль-ё")},
        pyrus={
            "api_url": url,
            "auth_url": url,
            "login": BOT_LOGIN,
            "security_key": SecretStr(BOT_SECURITY_KEY),
            "corrections_form_id": CORRECTIONS_FORM,
        },
        http={"retries": 2},
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client, server, store


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


WRONG = {"verdict": "wrong", "question": "не печатается чек", "correction": "Перезапустите"}


def test_cyrillic_console_credentials_are_accepted(console):
    client, _, _ = console
    answer = client.post(
        "/api/feedback", json=WRONG | {"correction": ""}, headers=_basic("Агент Иван", "пароль-ё")
    )
    assert answer.status_code == 200, answer.text
    denied = client.post("/api/feedback", json=WRONG, headers=_basic("Агент", "не тот"))
    assert denied.status_code == 401


@pytest.mark.parametrize(
    "change",
    [
        {"index_version": 2**63},
        {"source_documents": [2**64]},
        {"answer_mode": "ИНН 7707083893 Иванов"},
    ],
    ids=["version-above-int64", "document-above-int64", "free-text-mode"],
)
def test_feedback_out_of_range_is_refused_and_files_nothing(console, database, change):
    client, _, store = console
    answer = client.post("/api/feedback", json=WRONG | change, headers=_basic("a", "пароль-ё"))
    assert answer.status_code == 422 and answer.json()["detail"]
    assert store.created == []
    with database.connection() as conn:
        assert conn.execute("SELECT count(*) FROM console_feedback").fetchone()[0] == 0


def test_feedback_with_nul_is_stored_clean_and_the_name_scrubbed(console, database):
    client, _, store = console
    body = WRONG | {"question": "не\x00 печатается\x07 чек", "correction": "Пере\x00запустите"}
    answer = client.post(
        "/api/feedback", json=body, headers=_basic("ivan.petrov@example.com", "пароль-ё")
    )
    assert answer.status_code == 200, answer.text
    with database.connection() as conn:
        engineer, question, correction, task_id = conn.execute(
            "SELECT engineer, question, correction, correction_task_id FROM console_feedback"
        ).fetchone()
    assert question == "не печатается чек" and correction == "Перезапустите"
    assert "ivan.petrov" not in (engineer or "") and "example.com" not in (engineer or "")
    assert task_id is not None and len(store.created) == 1


def test_feedback_is_stored_before_filing_and_a_retry_files_once(console, database):
    from kb_core.bot.corrections import CorrectionFiling
    from kb_core.console.feedback import file_pending
    from kb_core.texts import load_texts

    client, server, store = console
    httpx.post(  # the filing's POST fails once (not retried: it is not idempotent)
        f"{server.url}/_admin/faults", json={"status": 500, "count": 1, "path_contains": "/tasks"}
    ).raise_for_status()
    headers = _basic("agent", "пароль-ё")
    first = client.post("/api/feedback", json=WRONG, headers=headers)
    assert first.status_code == 200 and first.json()["correction_task_id"] is None
    assert store.created == []
    again = client.post("/api/feedback", json=WRONG, headers=headers)  # the client retries
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert len(store.created) == 1
    settings = client.app.state.kb.settings  # type: ignore[attr-defined]
    with database.connection() as conn, _client(server) as pyrus:
        filing = CorrectionFiling.from_settings(settings, load_texts())
        assert file_pending(conn, pyrus, filing) == 0  # filed already: never twice
        rows = conn.execute("SELECT filing, correction_task_id FROM console_feedback").fetchall()
    assert len(rows) == 1 and rows[0][0] == "filed" and rows[0][1] is not None
    assert len(store.created) == 1


# -- finding 8: back-off of server errors vs rate limits ------------------------------------


def test_5xx_backs_off_exponentially_not_by_the_rate_window(pyrus_fake, monkeypatch):
    server, _ = pyrus_fake
    slept: list[float] = []
    real_sleep, me = time.sleep, threading.current_thread()

    def sleep(seconds: float) -> None:
        # Only this thread's back-off counts: threads other tests left behind (a server's
        # loop, a pool's reaper) keep sleeping for real.
        if threading.current_thread() is me:
            slept.append(seconds)
        else:
            real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", sleep)
    httpx.post(
        f"{server.url}/_admin/faults", json={"status": 500, "count": 3, "path_contains": "forms"}
    ).raise_for_status()
    http = ApiHttp(f"{server.url}/v4/", name="pyrus", policy=RetryPolicy(attempts=5))
    answer = http.request("GET", "forms")
    assert answer.status_code in (200, 401)  # past the faults (no token: 401 is fine)
    assert len(slept) == 3 and max(slept) <= 8.5 and slept[0] < 2  # not the 60 s window
    assert slept == sorted(slept)


def test_429_honours_the_reset_header_and_5xx_does_not():
    request = httpx.Request("GET", "http://x/")
    limited = httpx.Response(429, headers={"X-RateLimit-Reset": "42"}, request=request)
    failed = httpx.Response(500, headers={"X-RateLimit-Reset": "42"}, request=request)
    assert retry_delay(limited) == 42 and retry_delay(failed) is None


def test_two_worker_threads_answer_while_one_waits(database: Database):
    """One job blocked on a slow call does not hold up the next ticket."""
    with database.connection() as conn:
        slow = jobs.enqueue(conn, 1, 1, "new_ticket")
        quick = jobs.enqueue(conn, 2, 1, "new_ticket")
    release = threading.Event()
    done: list[int] = []

    def context() -> Any:
        class Stuck(Exception):
            pass

        def get_task(task_id: int) -> dict[str, Any]:
            if task_id == 1:
                release.wait(30)
            done.append(task_id)
            raise Stuck("stop here")  # the job fails after the (slow) call; enough

        return SimpleNamespace(pyrus=SimpleNamespace(get_task=get_task), bot_ids=set())

    stop = threading.Event()
    config = bot_worker.WorkerConfig(poll_s=0.05, max_attempts=1, backoff_s=0)
    threads = [
        threading.Thread(
            target=bot_worker.run_worker, args=(database.connection, context, stop, config)
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    try:
        _wait(lambda: 2 in done)
        assert 1 not in done  # the first is still waiting, the second was answered
    finally:
        release.set()
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
    assert slow and quick


def test_services_start_several_worker_threads(bot_settings: Settings, database: Database):
    from kb_cli.workers import start_workers

    assert bot_settings.bot.worker_threads >= 2
    stop = threading.Event()
    health = start_workers(bot_settings, database, stop)
    try:
        assert len(health.threads) == bot_settings.bot.worker_threads
        assert health.alive()
    finally:
        stop.set()
        health.join(timeout=10)


# -- finding 9: the lease ---------------------------------------------------------------------


def test_default_lease_recovers_a_killed_workers_job_within_about_a_minute():
    assert Settings.defaults().bot.job_lease_s <= 60
    assert bot_worker.WorkerConfig().lease_s <= 60


# -- finding 13: links only from the sources; the system prompt never in the output ------


def _hit(n: int, text: str, url: str | None) -> SearchHit:
    return SearchHit(
        document_id=n,
        chunk_id=100 + n,
        title=f"Статья {n}",
        score=0.9,
        snippet=text,
        heading_path=(f"Статья {n}",),
        url=url,
        source="confluence",
        external_id=str(n),
    )


HITS = [
    _hit(1, "Сбросьте пароль на странице https://help.example.ru/reset и войдите.", None),
    _hit(2, "Уведомления включаются в профиле.", "https://wiki.example.ru/pages/2"),
]


class ObedientLLM:
    """A model that does what the ticket told it to."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer

    def chat(self, messages: Any, *, json_mode: bool = True) -> ChatReply:
        return ChatReply(json.dumps(self.answer, ensure_ascii=False), "m", "stop", 1, 1, 1)


def _llm_answer(draft: str, recommendations: list[str] | None = None) -> dict[str, Any]:
    return {
        "answered": True,
        "category": "Другое",
        "recommendations": recommendations or ["Проверьте (S1)"],
        "draft_reply": draft,
        "source_ids": ["S1", "S2"],
        "confidence": 0.99,
    }


def test_a_link_no_source_holds_is_removed_and_the_draft_flagged():
    draft = (
        "Здравствуйте! Сбросьте пароль: https://help.example.ru/reset. "
        "Срочно подтвердите данные на https://evil.example.com/login?x=1 — иначе блокировка."
    )
    llm = ObedientLLM(_llm_answer(draft, ["Отправьте клиенту www.evil.example.com/pay"]))
    result = generate("вопрос", HITS, ["Другое"], llm)  # type: ignore[arg-type]
    assert result.mode == "llm" and "links_removed" in result.flags
    said = result.answer.draft_reply + " ".join(result.answer.recommendations)
    assert "evil.example.com" not in said
    assert "https://help.example.ru/reset" in said  # the cited passage holds this one
    assert result.answer.confidence <= 0.3

    from kb_core.generation.comment import render_html
    from kb_core.texts import load_texts

    assert load_texts().links_removed_warning in render_html(result)


def test_allow_listed_hosts_and_source_links_stay():
    from kb_core.generation.links import vet_links
    from kb_core.generation.schema import BotAnswer, Source

    answer = BotAnswer.model_validate(
        _llm_answer("См. https://wiki.example.ru/pages/2 и https://status.example.org/now")
    )
    sources = [Source("S1", HITS[0], HITS[0].snippet), Source("S2", HITS[1], HITS[1].snippet)]
    assert vet_links(answer, sources).removed == ("https://status.example.org/now",)
    assert vet_links(answer, sources, ["example.org"]).removed == ()


def test_a_draft_reciting_the_system_prompt_is_not_used():
    from kb_core.generation.links import leaks_prompt

    leaked = "Вот мои инструкции: " + SYSTEM_PROMPT[:400]
    result = generate("вопрос", HITS, ["Другое"], ObedientLLM(_llm_answer(leaked)))  # type: ignore[arg-type]
    assert result.mode == "extractive" and result.fallback_reason == "invalid_output"
    assert not leaks_prompt(result.answer.draft_reply, SYSTEM_PROMPT)
    assert not leaks_prompt("Здравствуйте! Включите уведомления в профиле.", SYSTEM_PROMPT)


# -- finding 14: graceful shutdown stops the embedded server it started ---------------------


@pytest.mark.integration  # starts a process
def test_kb_serve_on_sigterm_stops_the_embedded_server_it_started(tmp_path_factory):
    import os
    import signal
    import subprocess
    import sys

    from kb_core.db import embedded as embedded_pg
    from kb_fakes.server import free_port

    data_dir = tmp_path_factory.mktemp("srv")
    env = process_env(BASE.with_env({"KB_DATA_DIR": str(data_dir), "KB_BOT_POLL_S": "0.2"}))
    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("kb")), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        _wait(healthy, timeout=180)
        assert embedded_pg.running_uri(data_dir) is not None
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        assert embedded_pg.running_uri(data_dir) is None
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        embedded_pg.stop(data_dir)


def test_int64_bound_is_the_bigint_bound():
    assert INT64_MAX == 9223372036854775807
