"""The bot's measured effect: per-ticket outcomes, category statistics, the report.

Tickets are synthetic but shaped like samples/pyrus/tickets (a customer's e-mail, the
bot's internal comment, agents' replies through the channel, field_updates); the
statistics run against the real PostgreSQL of the test session.
"""

from __future__ import annotations

import copy
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from kb_core.db import Database
from kb_core.effect import (
    CategoryStats,
    OutcomeRow,
    TicketOutcome,
    category_from_task,
    category_stats,
    daily_trend,
    ticket_outcome,
    upsert_outcomes,
)
from kb_core.effect.report import (
    EffectThresholds,
    build_charts,
    coverage_chart,
    markdown_table,
    render_html,
    trend_chart,
)
from kb_core.texts import load_texts

MSK = ZoneInfo("Europe/Moscow")
CUSTOMER = {"id": 510001, "first_name": "Алексей", "last_name": "Гуревич", "type": "user"}
AGENT = {"id": 1104, "first_name": "Денис", "last_name": "Мамонтов", "type": "user"}
OTHER_AGENT = {"id": 1105, "type": "user"}
BOT = {"id": 9000, "type": "bot"}
EMAIL = {"type": "email"}

QUESTION = "Через несколько часов API отвечает 401 expired_token. Как продлевать токен?"
DRAFT = (
    "Здравствуйте! Время жизни токена не фиксировано. При ответе 401 или коде "
    "expired_token выполните POST /auth заново и повторите исходный запрос один раз. "
    "Кэшируйте токен и не запрашивайте его перед каждым вызовом."
)
# The draft with a few words changed: agents send such replies as "accepted".
LIGHT_EDIT = (
    "Добрый день! Время жизни токена не фиксировано. При ответе 401 или коде "
    "expired_token выполните POST /auth заново и повторите запрос. Кэшируйте токен и "
    "не запрашивайте его перед каждым вызовом API. С уважением, поддержка"
)
# Half the draft kept, the rest the agent's own: "edited".
PARTLY_KEPT = (
    "Добрый день! Время жизни токена не фиксировано. При ответе 401 выполните POST /auth "
    "заново. Но судя по логам, проблема в другом: ваш сервис ходит на старый адрес. "
    "Используйте api_url из ответа авторизации как базовый адрес всех вызовов."
)
UNRELATED = (
    "Добрый день! Чтобы письма о новых задачах приходили, включите уведомления в "
    "настройках профиля и проверьте папку «Спам»."
)

CATEGORY_FIELD = {
    "id": 3,
    "type": "catalog",
    "name": "Категория",
    "code": "u_category",
    "value": {"item_id": 40013, "headers": ["Категория"], "values": ["Интеграции и API"]},
}


def _comment(
    cid: int, at: str, author: dict[str, Any], text: str | None = None, **extra: Any
) -> dict[str, Any]:
    comment: dict[str, Any] = {"id": cid, "create_date": at, "author": author, **extra}
    if text is not None:
        comment["text"] = text
    return comment


def _task(
    *replies: dict[str, Any],
    closed: bool = True,
    created: str = "2026-05-04T19:05:00Z",
    fields: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A ticket: the customer's question, the bot's internal comment, then ``replies``."""
    task: dict[str, Any] = {
        "id": 700001,
        "form_id": 321,
        "create_date": created,
        "last_modified_date": "2026-05-04T21:05:00Z",
        "is_closed": closed,
        "author": CUSTOMER,
        "fields": fields if fields is not None else [copy.deepcopy(CATEGORY_FIELD)],
        "comments": [
            _comment(1, created, CUSTOMER, QUESTION, channel=EMAIL),
            _comment(2, "2026-05-04T19:06:00Z", BOT, "Черновик ответа ассистента: " + DRAFT),
            *replies,
        ],
    }
    if closed:
        task["close_date"] = "2026-05-04T21:05:00Z"
    return task


def _reply(text: str, cid: int = 3, at: str = "2026-05-04T19:25:00Z") -> dict[str, Any]:
    return _comment(cid, at, AGENT, text, channel=EMAIL)


def _outcome(task: dict[str, Any], draft: str | None = DRAFT, **kw: Any) -> TicketOutcome:
    return ticket_outcome(
        task,
        draft=draft,
        bot_mode="llm" if draft else None,
        bot_ids=kw.pop("bot_ids", ()),
        tz=MSK,
        accepted=0.6,
        edited=0.3,
        **kw,
    )


# -- outcomes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "expected", "low", "high"),
    [
        (DRAFT, "accepted", 0.999, 1.0),
        (LIGHT_EDIT, "accepted", 0.6, 0.95),
        (PARTLY_KEPT, "edited", 0.3, 0.6),
        (UNRELATED, "rewritten", 0.0, 0.3),
    ],
)
def test_outcome_from_draft_similarity(reply: str, expected: str, low: float, high: float):
    result = _outcome(_task(_reply(reply)))
    assert result.outcome == expected
    assert result.draft_similarity is not None and low <= result.draft_similarity <= high
    assert result.bot_answered and result.bot_mode == "llm"


def test_best_reply_counts_and_formatted_text_is_compared_without_markup():
    # The agent first asked a question, then sent the draft from the rich editor (HTML).
    html = (
        "<p>Здравствуйте! Время жизни токена <b>не фиксировано</b>.</p><ul><li>При ответе "
        "401 или коде <code>expired_token</code> выполните POST /auth заново и повторите "
        "исходный запрос один раз.</li><li>Кэшируйте токен и не запрашивайте его перед "
        "каждым вызовом.</li></ul>"
    )
    task = _task(
        _reply("Уточните, пожалуйста, какой у вас тариф?"),
        _comment(4, "2026-05-04T19:40:00Z", AGENT, formatted_text=html, channel=EMAIL),
    )
    result = _outcome(task)
    assert result.outcome == "accepted"
    assert result.draft_similarity is not None and result.draft_similarity > 0.9


def test_no_agent_reply_yet():
    internal_note = _comment(3, "2026-05-04T19:10:00Z", AGENT, DRAFT)  # no channel
    result = _outcome(_task(internal_note, closed=False))
    assert result.outcome == "no_reply"
    assert result.bot_answered and result.draft_similarity is None
    assert result.first_response_s is None and result.resolution_s is None
    assert not result.is_closed


def test_ticket_without_a_draft_is_not_used():
    result = _outcome(_task(_reply(DRAFT)), draft=None)
    assert result.outcome == "not_used"
    assert not result.bot_answered and result.bot_mode is None
    assert result.draft_similarity is None
    assert result.first_response_s == 20 * 60  # still measured: the baseline to compare to


def test_response_and_resolution_times_and_day():
    customer_again = _comment(3, "2026-05-04T19:15:00Z", CUSTOMER, "Есть новости?", channel=EMAIL)
    note = _comment(4, "2026-05-04T19:20:00Z", AGENT, "Смотрю логи")  # internal: not a reply
    first = _reply("Предварительный ответ", cid=5, at="2026-05-04T19:35:30Z")
    edit = _comment(6, "2026-05-04T19:50:00Z", AGENT, DRAFT, edit_comment_id=5)
    task = _task(customer_again, note, first, edit)
    result = _outcome(task)
    assert result.first_response_s == 30 * 60 + 30
    assert result.resolution_s == 2 * 3600
    assert result.outcome == "accepted"  # the reply as finally edited is compared
    assert result.is_closed and result.task_id == 700001 and result.form_id == 321
    assert result.day == date(2026, 5, 4)

    # Created 22:30 UTC on May 4 = 01:30 on May 5 in Moscow.
    late = _task(_reply(DRAFT, at="2026-05-04T22:40:00Z"), created="2026-05-04T22:30:00Z")
    assert _outcome(late).day == date(2026, 5, 5)


def test_configured_bot_ids_are_not_agents():
    # The bot posted through a user account listed in KB_PYRUS_BOT_IDS, with a channel.
    bot_as_user = _comment(3, "2026-05-04T19:07:00Z", {"id": 9001, "type": "user"}, DRAFT)
    bot_as_user["channel"] = EMAIL
    assert _outcome(_task(bot_as_user), bot_ids={9001}).outcome == "no_reply"
    assert _outcome(_task(bot_as_user)).outcome == "accepted"


# -- category ------------------------------------------------------------------------------


def _update(value: Any, field_id: int = 3) -> list[dict[str, Any]]:
    return [{"id": field_id, "value": value}]


def _catalog(name: str) -> dict[str, Any]:
    return {"item_id": 40000, "headers": ["Категория"], "values": [name]}


def test_category_set_by_the_bot_and_left_alone():
    task = _task(_reply(DRAFT))
    task["comments"][1]["field_updates"] = _update({"item_id": 40013})
    task["comments"].append(
        _comment(9, "2026-05-04T21:05:00Z", AGENT, field_updates=_update("checked", 7))
    )
    assert category_from_task(task, "u_category", ()) == ("Интеграции и API", "bot")


def test_category_changed_by_an_agent_after_the_bot():
    task = _task(_reply(DRAFT), fields=[{**CATEGORY_FIELD, "value": _catalog("Уведомления")}])
    task["comments"][1]["field_updates"] = _update({"item_id": 40013})
    task["comments"].append(
        _comment(9, "2026-05-04T20:00:00Z", OTHER_AGENT, field_updates=_update({"item_id": 1}))
    )
    assert category_from_task(task, "u_category", ()) == ("Уведомления", "agent")


def test_category_without_history_is_the_agents_and_bot_ids_count_as_bot():
    assert category_from_task(_task(), "u_category", ()) == ("Интеграции и API", "agent")

    text_field = {"id": 8, "type": "text", "code": "u_category", "value": " Доступ и права "}
    task = _task(fields=[text_field])
    task["comments"][1]["author"] = {"id": 9001, "type": "user"}
    task["comments"][1]["field_updates"] = [{"id": 8, "value": "Доступ и права"}]
    assert category_from_task(task, "u_category", {9001}) == ("Доступ и права", "bot")
    assert category_from_task(task, "u_category", ()) == ("Доступ и права", "agent")

    assert category_from_task(_task(fields=[]), "u_category", ()) is None
    empty = {**CATEGORY_FIELD, "value": {"item_id": 1, "values": []}}
    assert category_from_task(_task(fields=[empty]), "u_category", ()) is None


# -- statistics in PostgreSQL ---------------------------------------------------------------


def _row(
    task_id: int,
    category: str,
    outcome: str,
    *,
    day: date = date(2026, 5, 4),
    first: float | None = None,
    resolution: float | None = None,
    source: str = "agent",
    bot_category: str | None = None,
) -> OutcomeRow:
    answered = outcome != "not_used"
    return OutcomeRow(
        outcome=TicketOutcome(
            task_id=task_id,
            form_id=321,
            day=day,
            bot_answered=answered,
            bot_mode="extractive" if answered else None,
            draft_similarity={"accepted": 0.9, "edited": 0.4, "rewritten": 0.1}.get(outcome),
            outcome=outcome,  # type: ignore[arg-type]
            first_response_s=first,
            resolution_s=resolution,
            is_closed=resolution is not None,
        ),
        category=category,
        category_source=source,  # type: ignore[arg-type]
        category_confidence=0.8 if source != "agent" else None,
        bot_category=bot_category,
    )


ACCESS, NOTIFY = "Доступ и права", "Уведомления"
ROWS = [
    _row(1, ACCESS, "accepted", first=600, resolution=3600, bot_category="доступ  И права"),
    _row(2, ACCESS, "edited", first=1200, resolution=7200, source="bot", bot_category=ACCESS),
    _row(3, ACCESS, "rewritten", first=1800, bot_category=NOTIFY),
    _row(4, NOTIFY, "not_used", first=300, resolution=600),
    _row(5, NOTIFY, "no_reply", day=date(2026, 5, 5)),
    _row(6, "Другое", "accepted", day=date(2026, 5, 7), first=60),
]


def _store(database: Database) -> None:
    with database.connection() as conn:
        # Ticket 3 was first stored before the agent replied; reading it again replaces it.
        assert upsert_outcomes(conn, [_row(3, NOTIFY, "no_reply", source="bot")]) == 1
        assert upsert_outcomes(conn, ROWS) == len(ROWS)
        assert upsert_outcomes(conn, []) == 0


def test_outcomes_upsert_and_category_stats(database: Database):
    _store(database)
    with database.connection() as conn:
        stored = conn.execute(
            "SELECT count(*), max(outcome) FILTER (WHERE task_id = 3) FROM ticket_outcomes"
        ).fetchone()
        assert stored == (6, "rewritten")
        stats, total = category_stats(
            conn, date(2026, 5, 4), date(2026, 5, 5), minutes_accepted=10, minutes_edited=5
        )

    assert [s.category for s in stats] == [ACCESS, NOTIFY]  # by volume; May 7 is outside
    access, notify = stats
    assert (access.tickets, access.bot_answered, access.coverage) == (3, 3, 1.0)
    assert (access.accepted, access.edited, access.rewritten) == (1, 1, 1)
    assert access.acceptance_rate == pytest.approx(2 / 3)
    assert access.first_response_median_min == pytest.approx(20.0)
    assert access.first_response_p90_min == pytest.approx(28.0)  # 1200 + 0.8 × 600 s
    assert access.resolution_median_h == pytest.approx(1.5)  # the open ticket not counted
    assert access.minutes_saved == 15
    # Ticket 2 kept the bot's category: no person judged it. Ticket 1 agrees (case and
    # spacing aside), ticket 3 does not.
    assert (access.category_checked, access.category_agreed) == (2, 1)
    assert access.category_agreement == 0.5

    assert (notify.tickets, notify.bot_answered, notify.coverage) == (2, 1, 0.5)
    assert (notify.not_used, notify.no_reply, notify.acceptance_rate) == (1, 1, None)
    assert notify.category_agreement is None and notify.minutes_saved == 0

    assert total.category is None
    assert (total.tickets, total.bot_answered, total.accepted, total.edited) == (5, 4, 1, 1)
    assert total.first_response_median_min == pytest.approx(15.0)  # 300, 600, 1200, 1800 s
    assert total.acceptance_rate == pytest.approx(2 / 3)
    assert (total.minutes_saved, total.category_agreement) == (15, 0.5)


def test_one_day_and_an_empty_period(database: Database):
    _store(database)
    with database.connection() as conn:
        stats, total = category_stats(
            conn, date(2026, 5, 5), date(2026, 5, 5), minutes_accepted=10, minutes_edited=5
        )
        assert [(s.category, s.tickets) for s in stats] == [(NOTIFY, 1)]
        assert total.tickets == 1
        stats, total = category_stats(
            conn, date(2026, 6, 1), date(2026, 6, 30), minutes_accepted=10, minutes_edited=5
        )
    assert stats == []
    assert (total.tickets, total.coverage, total.acceptance_rate, total.minutes_saved) == (
        0,
        None,
        None,
        0.0,
    )


def test_daily_trend(database: Database):
    _store(database)
    with database.connection() as conn:
        trend = daily_trend(conn, date(2026, 5, 1), date(2026, 5, 31))
    assert trend == [
        {
            "day": date(2026, 5, 4),
            "category": ACCESS,
            "tickets": 3,
            "answered": 3,
            "drafts_used": 2,
        },
        {
            "day": date(2026, 5, 4),
            "category": NOTIFY,
            "tickets": 1,
            "answered": 0,
            "drafts_used": 0,
        },
        {
            "day": date(2026, 5, 5),
            "category": NOTIFY,
            "tickets": 1,
            "answered": 1,
            "drafts_used": 0,
        },
        {
            "day": date(2026, 5, 7),
            "category": "Другое",
            "tickets": 1,
            "answered": 1,
            "drafts_used": 1,
        },
    ]
    assert trend_chart(trend).startswith(b"\x89PNG")


def test_bad_category_source_is_refused():
    with pytest.raises(ValueError, match="category_source"):
        _row(1, ACCESS, "accepted", source="guess")
    with pytest.raises(ValueError, match="empty category"):
        _row(1, "", "accepted")


# -- report --------------------------------------------------------------------------------


def test_report_from_real_tickets_has_numbers_and_charts_but_no_ticket_text(database: Database):
    """Tickets → outcomes → PostgreSQL → statistics → HTML, as the pipeline does it."""
    tasks = [
        (_task(_reply(DRAFT)), DRAFT),
        (_task(_reply(PARTLY_KEPT)), DRAFT),
        (_task(_reply(UNRELATED)), None),
    ]
    rows = []
    for number, (task, draft) in enumerate(tasks):
        task["id"] = 800000 + number
        outcome = _outcome(task, draft=draft)
        found = category_from_task(task, "u_category", ())
        assert found is not None
        rows.append(OutcomeRow(outcome, found[0], "agent", None, "Интеграции и API"))
    with database.connection() as conn:
        upsert_outcomes(conn, rows)
        stats, total = category_stats(
            conn, date(2026, 5, 1), date(2026, 5, 31), minutes_accepted=10, minutes_edited=5
        )
        trend = daily_trend(conn, date(2026, 5, 1), date(2026, 5, 31))

    charts = build_charts(stats, trend)
    page = render_html(
        "Эффект ассистента <май>",
        "1–31 мая 2026",
        stats,
        total,
        charts,
        thresholds=EffectThresholds(0.6, 0.3, 10, 5),
    )
    texts = load_texts()
    assert page.count("data:image/png;base64,") == 2
    assert "Эффект ассистента &lt;май&gt;" in page and "<май>" not in page
    assert texts.effect_heading_method in page and "не ниже 0.6" in page
    assert "Период: 1–31 мая 2026" in page
    # One category: 3 tickets, 2 drafts, 1 accepted, 1 edited, 15 minutes saved.
    assert "<td>Интеграции и API</td><td>3</td><td>2</td><td>67 %</td><td>1</td><td>1</td>" in page
    assert "<td>15</td>" in page and f"<td>{texts.effect_total}</td>" in page
    for private in (QUESTION[:30], DRAFT[:30], PARTLY_KEPT[-30:], UNRELATED[:30], "Гуревич"):
        assert private not in page

    table = markdown_table(stats, total)
    assert table.splitlines()[0].startswith(f"| {texts.effect_col_category} |")
    assert "| Интеграции и API | 3 | 2 | 67 % | 1 | 1 | 0 | 1 | 0 | 100 % |" in table


def test_report_of_an_empty_period():
    empty = CategoryStats(None, 0, 0, 0, 0, 0, 0, 0, None, None, None, 0, 0, 0.0)
    page = render_html("Эффект", "июнь", [], empty, {})
    assert load_texts().effect_no_tickets in page and "data:image" not in page
    assert coverage_chart([]).startswith(b"\x89PNG") and trend_chart([]).startswith(b"\x89PNG")
