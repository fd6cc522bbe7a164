"""The bot end to end over real HTTP: fake Pyrus → webhook → job → worker → comment."""

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from bot_api.app import create_app
from kb_core.bot.context import bot_context
from kb_core.bot.worker import WorkerConfig, run_worker
from kb_core.db import Database
from kb_core.settings import PROJECT_ROOT, Settings
from kb_fakes.server import ServerThread
from kb_fakes.services import FakeServices
from tests.conftest import process_env

# Every test here starts from the sample articles, ingested once per session.
pytestmark = pytest.mark.from_samples

SUBJECT = "Не приходят письма о новых задачах"
DESCRIPTION = "Коллегам уведомления на почту приходят, а мне перестали. Что проверить?"


def wait_for(condition: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


@pytest.fixture
def bot_overrides() -> dict[str, str]:
    """Settings variables a module adds to the bot's (the holdout tests turn it on)."""
    return {}


@pytest.fixture
def bot_env(
    kb_settings: Settings, database: Database, fakes: FakeServices, bot_overrides: dict[str, str]
) -> Settings:
    return kb_settings.with_env({**fakes.env(), "KB_BOT_POLL_S": "0.1", **bot_overrides})


@pytest.fixture
def bot_url(bot_env: Settings) -> Iterator[str]:
    with ServerThread(create_app(bot_env), lifespan="on") as server:
        yield server.url


@pytest.fixture
def worker(bot_env: Settings, database: Database) -> Iterator[None]:
    stop = threading.Event()
    config = WorkerConfig(lease_s=30, poll_s=0.1, max_attempts=3, backoff_s=0.1)
    thread = threading.Thread(
        target=run_worker, args=(database.connection, lambda: bot_context(bot_env), stop, config)
    )
    thread.start()
    yield
    stop.set()
    thread.join(timeout=30)


def _new_ticket(fakes: FakeServices) -> int:
    task = fakes.pyrus_store.create_task(
        {
            "form_id": 321,
            "subject": SUBJECT,
            "fields": [
                {"id": 1, "code": "u_subject", "type": "text", "value": SUBJECT},
                {"id": 2, "code": "u_description", "type": "text", "value": DESCRIPTION},
            ],
            "text": DESCRIPTION,
        }
    )
    return int(task["id"])


def _webhook(fakes: FakeServices, task_id: int, url: str, **extra: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{fakes.pyrus.url}/_admin/webhook",
        json={"task_id": task_id, "url": f"{url}/pyrus/webhook", **extra},
        timeout=30,
    )
    response.raise_for_status()
    return response.json()


def _bot_comments(fakes: FakeServices, task_id: int) -> list[dict[str, Any]]:
    return [p for p in fakes.pyrus_store.posted if p["task_id"] == task_id]


def _jobs(database: Database) -> list[tuple]:
    with database.connection() as conn:
        return conn.execute("SELECT task_id, trigger, status FROM bot_jobs ORDER BY id").fetchall()


def test_new_ticket_mention_replay_and_bad_signature(fakes, bot_url, worker, database):
    task_id = _new_ticket(fakes)
    assert _webhook(fakes, task_id, bot_url) == {"task_id": task_id, "status": 200, "body": "{}"}
    first = wait_for(lambda: _bot_comments(fakes, task_id))
    assert len(first) == 1
    body = first[0]["request"]
    assert "channel" not in body  # internal: only participants see it
    html = body["formatted_text"]
    assert "Уведомления на почту" in html or "почт" in html
    assert "<a href=" in html
    # the category is written into the form's catalog field, as the catalog item
    category = next(f for f in fakes.pyrus_store.tasks[task_id]["fields"] if f["id"] == 3)
    assert 40011 <= category["value"]["item_id"] <= 40022
    assert body["field_updates"] == [{"id": 3, "value": {"item_id": category["value"]["item_id"]}}]
    assert category["value"]["values"]  # read back with the item's values, as Pyrus does

    # Pyrus retries the same webhook: no second job, no second comment
    _webhook(fakes, task_id, bot_url, retry="2/3")
    time.sleep(1.0)
    assert len(_bot_comments(fakes, task_id)) == 1
    assert [j[1] for j in _jobs(database)] == ["new_ticket"]

    # the conversation goes on, then an agent mentions the bot: a second, different answer
    httpx.post(
        f"{fakes.pyrus.url}/_admin/tasks/{task_id}/comments",
        json={"text": "Проверил: режим «Не беспокоить» выключен, канал почты включён."},
    ).raise_for_status()
    httpx.post(
        f"{fakes.pyrus.url}/_admin/tasks/{task_id}/comments",
        json={
            "text": "Бот, посмотри ещё раз: письма уходят в спам из-за DKIM?",
            "author": {"id": 502, "type": "user"},
            "mentions": [9000],
        },
    ).raise_for_status()
    _webhook(fakes, task_id, bot_url)
    second = wait_for(
        lambda: len(_bot_comments(fakes, task_id)) == 2 and _bot_comments(fakes, task_id)
    )
    assert second[1]["request"]["formatted_text"] != html

    def interactions() -> list[str]:
        # Recorded once the comment is posted: the comment can be seen a moment earlier.
        with database.connection() as conn:
            rows = conn.execute("SELECT query FROM bot_interactions ORDER BY id").fetchall()
        return [r[0] for r in rows]

    queries = wait_for(lambda: len(interactions()) == 2 and interactions())
    assert "DKIM" in queries[1] and "DKIM" not in queries[0]

    # a forged webhook: 401 and no job
    forged = _webhook(fakes, task_id, bot_url, signature="0" * 40)
    assert forged["status"] == 401
    assert len(_jobs(database)) == 2 and all(j[2] == "done" for j in _jobs(database))


def test_worker_killed_mid_job_finishes_after_restart(fakes, bot_env, bot_url, database):
    task_id = _new_ticket(fakes)
    # The fake Pyrus answers GET /tasks slowly, so the job is mid-flight when killed.
    httpx.post(
        f"{fakes.pyrus.url}/_admin/faults",
        json={"path_contains": f"/v4/tasks/{task_id}", "status": 0, "delay_s": 30, "count": 1},
    ).raise_for_status()
    _webhook(fakes, task_id, bot_url)
    env = process_env(bot_env.with_env({"KB_BOT_JOB_LEASE_S": "2", "KB_BOT_POLL_S": "0.2"}))
    kb = [sys.executable, "-m", "kb_cli.main", "worker"]
    first = subprocess.Popen(kb, env=env, cwd=PROJECT_ROOT, start_new_session=True)
    try:
        wait_for(lambda: _jobs(database) and _jobs(database)[0][2] == "running", timeout=60)
        time.sleep(0.5)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        assert _bot_comments(fakes, task_id) == []
        second = subprocess.Popen(kb, env=env, cwd=PROJECT_ROOT, start_new_session=True)
        try:
            wait_for(lambda: _bot_comments(fakes, task_id), timeout=90)
            wait_for(lambda: _jobs(database)[0][2] == "done", timeout=30)
        finally:
            os.killpg(second.pid, signal.SIGTERM)
            second.wait(timeout=30)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    assert len(_bot_comments(fakes, task_id)) == 1


def test_llm_mode_answers_from_the_retrieved_passages(fakes, bot_env, database):
    from kb_fakes.llm import FAKE_LLM_KEY, start_fake_llm

    llm = start_fake_llm()
    try:
        settings = bot_env.with_env({"KB_LLM_URL": f"{llm.url}/v1", "KB_LLM_API_KEY": FAKE_LLM_KEY})
        stop = threading.Event()
        config = WorkerConfig(lease_s=30, poll_s=0.1, max_attempts=3, backoff_s=0.1)
        thread = threading.Thread(
            target=run_worker,
            args=(database.connection, lambda: bot_context(settings), stop, config),
        )
        thread.start()
        try:
            with ServerThread(create_app(settings), lifespan="on") as api:
                task_id = _new_ticket(fakes)
                _webhook(fakes, task_id, api.url)
                posted = wait_for(lambda: _bot_comments(fakes, task_id))
        finally:
            stop.set()
            thread.join(timeout=30)
    finally:
        llm.stop()
    html = posted[0]["request"]["formatted_text"]
    assert "Ответ подготовлен LLM" in html and FAKE_LLM_KEY not in html
    with database.connection() as conn:
        mode, answer = conn.execute("SELECT mode, answer FROM bot_interactions").fetchone()
    assert mode == "llm" and answer["source_ids"]
