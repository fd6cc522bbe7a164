"""The effect assets and the failure sensor against the fakes (Pyrus, messenger, printer).

``ticket_categories`` reads a day's tickets from the fake Pyrus seeded with the sample
tickets, ``category_stats`` adds them up into a report and the daily digest,
``weekly_effect_report`` prints the week through the fake print service, and
``notify_run_failures`` tells the fake messenger about failed runs. No index is built:
the classifier falls back to keywords.
"""

import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from kb_assets.definitions import build_resources
from kb_assets.effect import category_stats, ticket_categories, weekly_effect_report
from kb_assets.sensors import notify_run_failures
from kb_core.db import Database
from kb_core.settings import Settings
from kb_fakes.messenger import create_messenger_app, webhook_url
from kb_fakes.printer import CONVERT_PATH, create_printer_app
from kb_fakes.pyrus import SAMPLE_DIR
from kb_fakes.server import ServerThread
from kb_fakes.services import SAMPLE_BOT_IDS, SAMPLE_HELPDESK_FORM, FakeServices

TZ = ZoneInfo("Europe/Moscow")
BOT_IDS = {int(i) for i in SAMPLE_BOT_IDS.split(",")}
# Every message's kind travels with it, so a test can tell a digest from a failure.
PAYLOAD = '{"text": {{ text | tojson }}, "kind": {{ kind | tojson }}}'
OUTCOMES_OF_A_USED_DRAFT = {"accepted", "edited", "rewritten"}


# -- the sample tickets, read independently of the code under test ---------------------------


def _sample_tickets() -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = []
    for path in sorted((SAMPLE_DIR / "tickets").glob("*.json")):
        if not path.name.endswith(".pii.json"):
            tasks.extend(json.loads(path.read_text("utf-8")))
    return tasks


def _sample_pii(task_ids: set[int]) -> set[str]:
    """Every personal value of the tickets: annotated ones and the people's e-mails."""
    values: set[str] = set()
    for path in (SAMPLE_DIR / "tickets").glob("*.pii.json"):
        values.update(
            str(r["value"]) for r in json.loads(path.read_text("utf-8")) if r["task_id"] in task_ids
        )
    for task in _sample_tickets():
        if task["id"] in task_ids:
            people = [task.get("author") or {}, *(c.get("author") or {} for c in task["comments"])]
            values.update(p["email"] for p in people if p.get("email"))
            values.update(str(f["value"]) for f in task["fields"] if f.get("type") == "email")
    return values


def _moscow_day(stamp: str) -> date:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(TZ).date()


def _bot_commented(task: dict[str, Any]) -> bool:
    return any(
        (c["author"].get("type") == "bot" or c["author"].get("id") in BOT_IDS)
        and (c.get("text") or c.get("formatted_text"))
        for c in task["comments"]
    )


def _agent_replied(task: dict[str, Any]) -> bool:
    customer = task["author"]["id"]
    return any(
        c.get("channel")
        and c.get("text")
        and c["author"].get("type") != "bot"
        and c["author"]["id"] not in BOT_IDS
        and c["author"]["id"] != customer
        for c in task["comments"]
    )


def _category(task: dict[str, Any]) -> tuple[str, str]:
    """(name, who set it): the bot when the latest change of the field was the bot's."""
    field = next(f for f in task["fields"] if f["code"] == "u_category")
    setter = "agent"
    for comment in task["comments"]:
        if any(u.get("code") == "u_category" for u in comment.get("field_updates") or []):
            is_bot = comment["author"].get("type") == "bot" or comment["author"]["id"] in BOT_IDS
            setter = "bot" if is_bot else "agent"
    return field["value"]["values"][0], setter


def _busy_day() -> tuple[date, list[dict[str, Any]]]:
    """The first day (Moscow time) with two or more helpdesk tickets, every one of them
    with a draft of the bot and an agent's reply, and a phone or e-mail in the text."""
    by_day: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for task in _sample_tickets():
        if task["form_id"] == SAMPLE_HELPDESK_FORM:
            by_day[_moscow_day(task["create_date"])].append(task)
    annotated: set[int] = set()
    for path in (SAMPLE_DIR / "tickets").glob("*.pii.json"):
        rows = json.loads(path.read_text("utf-8"))
        annotated.update(r["task_id"] for r in rows if r["type"] in ("PHONE", "EMAIL"))
    for day, tasks in sorted(by_day.items()):
        if (
            len(tasks) >= 2
            and all(_bot_commented(t) and _agent_replied(t) for t in tasks)
            and any(t["id"] in annotated for t in tasks)
        ):
            return day, tasks
    raise AssertionError("the samples have no such day")


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def messenger() -> Iterator[tuple[ServerThread, Any]]:
    app = create_messenger_app()
    with ServerThread(app) as server:
        yield server, app.state.inbox


@pytest.fixture
def printer() -> Iterator[ServerThread]:
    with ServerThread(create_printer_app()) as server:
        yield server


@pytest.fixture
def effect_env(kb_settings: Settings, fakes: FakeServices, tmp_path: Path) -> Settings:
    return kb_settings.with_env(
        {
            **fakes.env(),
            "KB_REPORTS_DIR": str(tmp_path / "reports"),
            "KB_STATS_TIMEZONE": "Europe/Moscow",
        }
    )


def _materialize(
    assets: list[Any], settings: Settings, day: date | None
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        assets,
        partition_key=day.isoformat() if day else None,
        resources=build_resources(settings),
    )


def _metadata(result: dg.ExecuteInProcessResult, name: str) -> dict[str, Any]:
    return {
        k: v.value
        for m in result.asset_materializations_for_node(name)
        for k, v in m.metadata.items()
    }


def _outcomes(database: Database, day: date) -> dict[int, dict[str, Any]]:
    with database.connection() as conn:
        cursor = conn.execute(
            "SELECT task_id, category, category_source, bot_answered, outcome, form_id "
            "FROM ticket_outcomes WHERE day = %s",
            (day,),
        )
        names = [d.name for d in cursor.description]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def _yesterday() -> date:
    return datetime.now(TZ).date() - timedelta(days=1)


# -- ticket_categories + category_stats --------------------------------------------------------


def test_a_day_of_sample_tickets_is_categorised_measured_and_reported(
    effect_env: Settings, database: Database, tmp_path: Path
):
    day, tasks = _busy_day()
    result = _materialize([ticket_categories, category_stats], effect_env, day)
    assert result.success

    rows = _outcomes(database, day)
    assert set(rows) == {t["id"] for t in tasks}
    for task in tasks:
        row = rows[task["id"]]
        name, setter = _category(task)
        assert (row["category"], row["category_source"]) == (name, setter)
        assert row["form_id"] == SAMPLE_HELPDESK_FORM
        assert row["bot_answered"] is True
        assert row["outcome"] in OUTCOMES_OF_A_USED_DRAFT

    categories = _metadata(result, "ticket_categories")
    assert categories["tickets"] == len(tasks) == categories["bot_answered"]
    stats = _metadata(result, "category_stats")
    assert stats["tickets"] == len(rows)
    assert stats["bot_answered"] == len(rows)
    assert stats["digest_sent"] is False  # no messenger configured

    report = tmp_path / "reports" / "daily" / f"{day.isoformat()}.html"
    assert stats["report"] == str(report)
    page = report.read_text("utf-8")
    assert "data:image/png;base64," in page
    for name in {_category(t)[0] for t in tasks}:
        assert name in page
    leaked = {value for value in _sample_pii({t["id"] for t in tasks}) if value in page}
    assert leaked == set()


def test_a_ticket_without_a_category_is_classified(
    effect_env: Settings, fakes: FakeServices, database: Database
):
    task = fakes.pyrus_store.create_task(
        {
            "form_id": SAMPLE_HELPDESK_FORM,
            "fields": [
                {"id": 1, "code": "u_subject", "type": "text", "value": "Уведомления не приходят"},
                {
                    "id": 2,
                    "code": "u_description",
                    "type": "text",
                    "value": "Уведомления не приходят на почту уже второй день.",
                },
            ],
            "text": "Уведомления не приходят на почту уже второй день.",
        }
    )
    # Filed yesterday (the latest day partition); changed since, as a live ticket is.
    day = _yesterday()
    filed = datetime.combine(day, time(12, 0), tzinfo=TZ).astimezone(ZoneInfo("UTC"))
    task["create_date"] = filed.strftime("%Y-%m-%dT%H:%M:%SZ")

    result = _materialize([ticket_categories], effect_env, day)
    assert result.success
    row = _outcomes(database, day)[int(task["id"])]
    assert (row["category"], row["category_source"]) == ("Уведомления", "classifier")
    assert (row["bot_answered"], row["outcome"]) == (False, "not_used")
    assert _metadata(result, "ticket_categories")["category_by"] == {"classifier": 1}
    with database.connection() as conn:
        confidence = conn.execute(
            "SELECT category_confidence FROM ticket_outcomes WHERE task_id = %s", (task["id"],)
        ).fetchone()[0]
    assert confidence is not None and 0 < confidence <= 1

    # The day recomputed (a backfill, a late reply): its rows are replaced, not added.
    before = _outcomes(database, day)
    assert _materialize([ticket_categories], effect_env, day).success
    assert _outcomes(database, day) == before
    with database.connection() as conn:
        assert conn.execute("SELECT count(*) FROM ticket_outcomes").fetchone()[0] == len(before)


# -- notifications and printed reports ------------------------------------------------------


def test_the_daily_digest_reaches_the_messenger(
    effect_env: Settings, database: Database, messenger
):
    server, inbox = messenger
    settings = effect_env.with_env(
        {"KB_NOTIFY_WEBHOOK_URL": webhook_url(server.url), "KB_NOTIFY_PAYLOAD_TEMPLATE": PAYLOAD}
    )
    day, tasks = _busy_day()
    result = _materialize([ticket_categories, category_stats], settings, day)
    assert _metadata(result, "category_stats")["digest_sent"] is True
    assert [m["kind"] for m in inbox.messages] == ["digest"]
    text = inbox.messages[0]["text"]
    assert day.isoformat() in text
    assert f"Заявок: {len(tasks)}" in text
    leaked = {value for value in _sample_pii({t["id"] for t in tasks}) if value in text}
    assert leaked == set()


def test_the_weekly_report_is_printed_and_announced(
    effect_env: Settings, database: Database, messenger, printer, tmp_path: Path
):
    server, inbox = messenger
    without_printer = effect_env.with_env(
        {"KB_NOTIFY_WEBHOOK_URL": webhook_url(server.url), "KB_NOTIFY_PAYLOAD_TEMPLATE": PAYLOAD}
    )
    settings = without_printer.with_env({"KB_PRINT_SERVICE_URL": printer.url + CONVERT_PATH})
    result = _materialize([weekly_effect_report], settings, None)
    meta = _metadata(result, "weekly_effect_report")
    end = _yesterday()
    stem = f"effect-{(end - timedelta(days=6)).isoformat()}-{end.isoformat()}"
    pdf = tmp_path / "reports" / "weekly" / f"{stem}.pdf"
    assert meta["pdf"] is True and meta["report"] == str(pdf)
    assert pdf.read_bytes().startswith(b"%PDF")
    assert (pdf.with_suffix(".html")).is_file()
    assert [m["kind"] for m in inbox.messages] == ["weekly_report"]
    assert str(pdf) in inbox.messages[0]["text"]

    # Without a print service the report stays HTML, and says so.
    pdf.unlink()
    result = _materialize([weekly_effect_report], without_printer, None)
    meta = _metadata(result, "weekly_effect_report")
    html = pdf.with_suffix(".html")
    assert meta["pdf"] is False and meta["report"] == str(html)
    assert not pdf.exists()
    assert "<html" in html.read_text("utf-8")
    assert [m["kind"] for m in inbox.messages] == ["weekly_report", "weekly_report"]
    assert str(html) in inbox.messages[1]["text"]


# -- notify_run_failures ------------------------------------------------------------------------


@dg.op
def fetch_tickets() -> None:
    raise RuntimeError("Pyrus недоступен: 503")


@dg.op(name="promoted_index")
def refuse_promotion() -> None:
    raise dg.Failure(description="candidate 7 refused: embedded")


@dg.job
def nightly_refresh() -> None:
    fetch_tickets()


@dg.job
def promotion_only() -> None:
    refuse_promotion()


@dg.job
def promotion_and_more() -> None:
    refuse_promotion()
    fetch_tickets()


@dg.asset(name="rag_eval")
def eval_stub() -> None:
    return None


@dg.asset_check(asset=eval_stub, name="candidate_passes_eval", blocking=True)
def gate_stub() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR)


@dg.asset(name="promoted_index", deps=[eval_stub])
def promotion_stub() -> None:
    return None


def _failed_run(job: Any, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    assert not result.success
    return result


def _sense(result: Any, instance: dg.DagsterInstance, settings: Settings) -> None:
    context = dg.build_run_status_sensor_context(
        sensor_name="notify_run_failures",
        dagster_event=result.get_run_failure_event(),
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        resources={"notifications": build_resources(settings)["notifications"]},
    )
    notify_run_failures(context)


def test_failed_runs_reach_the_messenger_except_refused_promotions(
    kb_settings: Settings, messenger
):
    server, inbox = messenger
    settings = kb_settings.with_env(
        {"KB_NOTIFY_WEBHOOK_URL": webhook_url(server.url), "KB_NOTIFY_PAYLOAD_TEMPLATE": PAYLOAD}
    )
    instance = dg.DagsterInstance.ephemeral()

    failed = _failed_run(nightly_refresh, instance)
    _sense(failed, instance, settings)
    assert [m["kind"] for m in inbox.messages] == ["run_failure"]
    text = inbox.messages[0]["text"]
    assert "nightly_refresh" in text and failed.run_id in text
    assert "fetch_tickets" in text

    # Refused promotion: announced by the step itself as a blocked promotion.
    _sense(_failed_run(promotion_only, instance), instance, settings)
    gated = dg.materialize(
        [eval_stub, gate_stub, promotion_stub], instance=instance, raise_on_error=False
    )
    assert not gated.success
    _sense(gated, instance, settings)
    assert len(inbox.messages) == 1

    # A refused promotion beside another failure is still a failed run to report.
    both = _failed_run(promotion_and_more, instance)
    _sense(both, instance, settings)
    assert len(inbox.messages) == 2
    assert "fetch_tickets" in inbox.messages[1]["text"]
    assert "promoted_index" in inbox.messages[1]["text"]


def test_a_failure_message_quotes_the_steps_error(kb_settings: Settings, messenger):
    server, inbox = messenger
    settings = kb_settings.with_env({"KB_NOTIFY_WEBHOOK_URL": webhook_url(server.url)})
    instance = dg.DagsterInstance.ephemeral()
    _sense(_failed_run(nightly_refresh, instance), instance, settings)
    assert "Pyrus недоступен: 503" in inbox.messages[0]["text"]
