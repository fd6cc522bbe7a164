"""The correction loop end to end on the fakes.

A question the bot answers wrong → the agent mentions the bot with a correction → the bot
files an «Актуализация RAG» task → a knowledge owner approves it → the corrections sensor
starts a refresh that scrubs, indexes, evaluates and promotes a new version → the same
question now gets the corrected entry as its first source, and the approved correction
is a regression case of the evaluation that let the version through.
"""

import json
import re
from typing import Any

import dagster as dg
import httpx
import pytest

from bot_api.app import create_app
from kb_assets.assets import INGEST_ASSETS, INGEST_CHECKS
from kb_assets.definitions import build_resources
from kb_assets.sensors import corrections_refresh, corrections_sensor
from kb_core.bot import jobs
from kb_core.bot.context import bot_context
from kb_core.bot.worker import process_job
from kb_core.db import Database
from kb_core.index.versions import active_version
from kb_core.settings import Settings
from kb_fakes.pyrus import BOT_LOGIN
from kb_fakes.server import ServerThread
from kb_fakes.services import SAMPLE_CORRECTIONS_FORM, FakeServices
from tests.conftest import run_ingest

BOT_ID = 9000
AGENT = {"id": 1104, "first_name": "Денис", "last_name": "Мамонтов", "type": "user"}
OWNER = {"id": 1106, "first_name": "Руслан", "last_name": "Ефремов", "type": "user"}
SUBJECT = "Звуковой сигнал о новой задаче в клиенте для Linux"
DESCRIPTION = "Работаем на Linux. Как включить звуковой сигнал, когда приходит новая задача?"
FACT = "десктопного клиента для Linux нет"
CORRECTED = (
    "Сейчас десктопного клиента для Linux нет. Откройте веб-версию в браузере и "
    "разрешите сайту уведомления со звуком в настройках браузера."
)


@pytest.fixture
def loop_env(kb_settings: Settings, fakes: FakeServices) -> Settings:
    """The product pointed at the fakes: the bot, and the corrections source. Confluence,
    Jira and resolved tickets stay off to keep the indexing short; the sample articles are
    the knowledge base."""
    env = {
        key: value
        for key, value in fakes.env().items()
        if not key.startswith(("KB_CONFLUENCE", "KB_JIRA"))
    }
    return kb_settings.with_env({**env, "KB_PYRUS_FORM_IDS": ""})


def _new_ticket(fakes: FakeServices) -> int:
    task = fakes.pyrus_store.create_task(
        {
            "form_id": 321,
            "fields": [
                {"id": 1, "code": "u_subject", "type": "text", "value": SUBJECT},
                {"id": 2, "code": "u_description", "type": "text", "value": DESCRIPTION},
            ],
            "text": DESCRIPTION,
        }
    )
    return int(task["id"])


def _webhook(fakes: FakeServices, task_id: int, bot_url: str) -> None:
    response = httpx.post(
        f"{fakes.pyrus.url}/_admin/webhook",
        json={"task_id": task_id, "url": f"{bot_url}/pyrus/webhook"},
        timeout=30,
    )
    response.raise_for_status()
    assert response.json()["status"] == 200


def _work_off(database: Database, settings: Settings) -> list[Any]:
    """Claim and process every queued job, as the worker would."""
    ctx = bot_context(settings)
    outcomes = []
    with database.connection() as conn:
        while (job := jobs.claim(conn, "test-worker", 60)) is not None:
            outcomes.append(process_job(conn, job, ctx))
            jobs.complete(conn, job)
    return outcomes


def _last_answer(database: Database, task_id: int) -> dict[str, Any]:
    with database.connection() as conn:
        row = conn.execute(
            "SELECT retrieved, index_version, category, category_method FROM bot_interactions "
            "WHERE task_id = %s ORDER BY id DESC LIMIT 1",
            (task_id,),
        ).fetchone()
    retrieved, version, category, method = row
    return {"retrieved": retrieved, "version": version, "category": category, "method": method}


def test_a_corrected_answer_is_knowledge_and_a_regression_case(
    loop_env: Settings, fakes: FakeServices, database: Database, sample_dir
):
    store = fakes.pyrus_store
    run_ingest(loop_env, sample_dir)
    with database.connection() as conn:
        first_version = active_version(conn).id

    with ServerThread(create_app(loop_env), lifespan="on") as bot:
        # 1. A new ticket the knowledge base has no answer to: the bot answers anyway.
        ticket = _new_ticket(fakes)
        _webhook(fakes, ticket, bot.url)
        _work_off(database, loop_env)
        before = _last_answer(database, ticket)
        assert before["version"] == first_version
        assert FACT not in store.posted[-1]["request"]["formatted_text"]
        assert before["method"] in ("knn", "knn+keywords", "keywords", "fallback")

        # 2. The agent corrects it by mentioning the bot; the bot files the correction.
        store.add_comment(
            ticket, AGENT, {"text": f"@Бот исправление: {CORRECTED}", "mentions": [BOT_ID]}
        )
        _webhook(fakes, ticket, bot.url)
        _work_off(database, loop_env)
    created = [c for c in store.created if c["request"]["form_id"] == SAMPLE_CORRECTIONS_FORM]
    assert len(created) == 1
    correction_id = created[0]["task_id"]
    confirmation = store.posted[-1]
    assert confirmation["task_id"] == ticket
    assert f"#id{correction_id}" in confirmation["request"]["formatted_text"]

    resources = build_resources(loop_env, database_url=database.url)
    instance = dg.DagsterInstance.ephemeral()

    def tick() -> Any:
        return corrections_sensor(dg.build_sensor_context(instance=instance, resources=resources))

    # 3. Not approved yet: the sensor has nothing to ingest.
    assert isinstance(tick(), dg.SkipReason)

    # 4. The knowledge owner approves it; the sensor starts the refresh, once.
    store.add_comment(
        correction_id,
        OWNER,
        {
            "text": "Согласовано.",
            "field_updates": [
                {"id": 6, "value": {"choice_ids": [1], "choice_names": ["Одобрено"]}}
            ],
            "action": "finished",
        },
    )
    request = tick()
    assert isinstance(request, dg.RunRequest)
    assert tick().run_key == request.run_key  # the same change: the same run key
    definitions = dg.Definitions(
        assets=INGEST_ASSETS,
        asset_checks=INGEST_CHECKS,
        jobs=[corrections_refresh],
        resources=resources,
        executor=dg.in_process_executor,
    )
    result = definitions.resolve_job_def("corrections_refresh").execute_in_process(
        instance=instance, tags=request.tags
    )
    assert result.success
    with database.connection() as conn:
        promoted = active_version(conn)
        eval_cases = {
            r[0]
            for r in conn.execute(
                "SELECT case_id FROM eval_cases WHERE run_id = "
                "(SELECT max(id) FROM eval_runs WHERE index_version = %s) AND mode = 'hybrid'",
                (promoted.id,),
            ).fetchall()
        }
    assert promoted.id > first_version
    assert f"correction-{correction_id}" in eval_cases
    # Ingested: nothing left for the sensor.
    assert isinstance(tick(), dg.SkipReason)

    # 5. The same question again: the corrected entry is the first source.
    with ServerThread(create_app(loop_env), lifespan="on") as bot:
        store.add_comment(ticket, AGENT, {"text": "@Бот ответь ещё раз", "mentions": [BOT_ID]})
        _webhook(fakes, ticket, bot.url)
        _work_off(database, loop_env)
    after = _last_answer(database, ticket)
    assert after["version"] == promoted.id
    first = after["retrieved"][0]
    assert (first["source"], first["external_id"]) == ("correction", str(correction_id))
    answer_html = store.posted[-1]["request"]["formatted_text"]
    assert FACT in answer_html
    assert BOT_LOGIN not in json.dumps(after)  # nothing of the bot's credentials recorded
    assert re.search(r"kb#\d+", answer_html)
