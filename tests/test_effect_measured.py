"""The measured effect: the estimator on simulated histories with a planted effect, the
holdout's assignment, and reports drawn from stored tickets (real PostgreSQL)."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import date, timedelta

import pytest

from kb_core.db import Database
from kb_core.effect.estimate import EstimateConfig, TicketRecord, category_effect, compare
from kb_core.effect.holdout import HoldoutPolicy, bot_stays_silent, in_holdout, ticket_arm
from kb_core.effect.measured import EffectSettings, load_records, measure, measured_effect
from kb_core.effect.report import effect_markdown, format_effect, render_html
from kb_core.effect.simulation import (
    DEFAULT_SPECS,
    PLANTED,
    SimulationConfig,
    simulate,
    store,
)
from kb_core.effect.stats import CategoryStats
from kb_core.notify import digest_text
from kb_core.texts import load_texts

FAST = EstimateConfig(resamples=1000, metrics=("first_response",), before_after=False)
PLANTED_IN = {s.name for s in DEFAULT_SPECS if s.first_response_effect}


def _truth(category: str | None) -> float:
    return -PLANTED if category in PLANTED_IN else 0.0


def test_simulated_planted_effect_is_recovered_inside_the_intervals():
    """Three categories 30 % faster, three unchanged, 10 % holdout: over 20 seeds the
    95 % intervals contain the planted change (−0.30) and zero where nothing is planted."""
    assert len(PLANTED_IN) == 3 and len(DEFAULT_SPECS) == 6
    covered = {"planted": 0, "none": 0}
    counted = {"planted": 0, "none": 0}
    detected = 0
    false_alarms = 0
    for seed in range(20):
        records = simulate(seed=seed)
        config = replace(FAST, seed=seed)
        for spec in DEFAULT_SPECS:
            effect = category_effect(
                spec.name, [r for r in records if r.category == spec.name], config
            )
            result = effect.controlled["first_response"]
            assert result.status == "ok"
            kind = "planted" if effect.category in PLANTED_IN else "none"
            counted[kind] += 1
            covered[kind] += result.contains(_truth(effect.category))
            if kind == "planted":
                detected += result.significant and result.estimate is not None
            else:
                false_alarms += result.significant
    # 60 intervals each: nominal 95 %, a binomial lower tail well below 0.88 is rare.
    assert covered["planted"] / counted["planted"] >= 0.88, covered
    assert covered["none"] / counted["none"] >= 0.88, covered
    # "no effect" where there is none, and the planted effect found in most histories.
    assert false_alarms <= 6
    assert detected >= 45


def test_fewer_tickets_than_the_minimum_sample_say_so_instead_of_a_number():
    texts = load_texts()
    config = EstimateConfig(min_sample=30, resamples=200)
    import numpy as np

    rng = np.random.default_rng(1)
    small = compare("first_response", [60.0] * 100, [90.0] * 29, config, rng)
    assert small.status == "insufficient" and small.estimate is None and small.low is None
    assert format_effect(small, texts) == "мало данных"
    enough = compare("first_response", [60.0, 70.0] * 50, [90.0, 100.0] * 20, config, rng)
    assert enough.status == "ok" and enough.estimate is not None
    assert enough.low is not None and enough.high is not None and enough.high < 0
    assert "[" in format_effect(enough, texts)


def test_rate_and_replies_are_differences_and_times_a_relative_change():
    import numpy as np

    config = EstimateConfig(min_sample=5, resamples=500)
    rng = np.random.default_rng(0)
    rate = compare("reopen_rate", [0.0] * 90 + [1.0] * 10, [0.0] * 80 + [1.0] * 20, config, rng)
    assert rate.estimate == pytest.approx(-0.10)
    replies = compare("agent_replies", [2.0] * 50, [3.0] * 50, config, rng)
    assert replies.estimate == pytest.approx(-1.0) and replies.low == replies.high == -1.0
    times = compare("first_response", [70.0] * 40, [100.0] * 40, config, rng)
    assert times.estimate == pytest.approx(-0.30)


def test_holdout_assignment_is_deterministic_and_near_the_share():
    ids = range(1_000_000, 1_010_000)
    for share in (0.1, 0.25, 0.5):
        held = [i for i in ids if in_holdout(i, share)]
        assert abs(len(held) / 10_000 - share) <= 0.02, (share, len(held))
        assert held == [i for i in ids if in_holdout(i, share)]  # reproducible
    # A larger share only adds tickets: nobody leaves the holdout when it grows.
    assert {i for i in ids if in_holdout(i, 0.1)} <= {i for i in ids if in_holdout(i, 0.2)}
    assert not any(in_holdout(i, 0.0) for i in ids)
    assert all(in_holdout(i, 1.0) for i in ids)


def test_recorded_arm_survives_a_new_share_and_switching_the_holdout_off(database: Database):
    held = next(i for i in range(1, 10_000) if in_holdout(i, 0.1))
    assisted = next(i for i in range(1, 10_000) if not in_holdout(i, 0.1))
    on = HoldoutPolicy(enabled=True, share=0.1)
    with database.connection() as conn:
        assert ticket_arm(conn, held, on) == "holdout"
        assert ticket_arm(conn, assisted, on) == "assisted"
        # A share of 0 later does not move a recorded ticket.
        assert ticket_arm(conn, held, HoldoutPolicy(True, 0.0)) == "holdout"
        # A mention on a ticket older than the holdout assigns nothing.
        assert not bot_stays_silent(conn, held + 10_000_000, "mention", on)
        assert ticket_arm(conn, held + 10_000_000, on, assign=False) is None
        # Off: the bot answers everything, the recorded history stays.
        off = HoldoutPolicy(enabled=False, share=0.1)
        assert not bot_stays_silent(conn, held, "new_ticket", off)
        assert bot_stays_silent(conn, held, "mention", on)
        assert not bot_stays_silent(conn, held, "correction", on)
        rows = conn.execute(
            "SELECT task_id, arm, holdout_share FROM ticket_arms ORDER BY 1"
        ).fetchall()
    assert sorted(rows) == sorted([(held, "holdout", 0.1), (assisted, "assisted", 0.1)])
    with pytest.raises(ValueError, match=r"0\.\.1"):
        HoldoutPolicy(True, 1.5)


def _settings(**overrides: object) -> EffectSettings:
    base = EffectSettings(
        window_days=84,
        assistant_start=date(2026, 6, 29),
        holdout_enabled=True,
        holdout_share=0.1,
        estimate=EstimateConfig(resamples=500),
        minutes_fallback=True,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def test_stored_history_gives_the_controlled_and_the_before_after_effect(database: Database):
    config = SimulationConfig()  # 56 days before 2026-06-29, 84 with the assistant
    records = simulate(seed=3, config=config)
    end = config.start + timedelta(days=config.before_days + config.days - 1)
    with database.connection() as conn:
        assert store(conn, records, 0.1) == len(records)
        loaded = load_records(conn, date(2026, 6, 29), end, date(2026, 6, 29), 56)
        measured = measured_effect(conn, end, _settings())
    assert len(loaded) == len(records)
    assert {r.arm for r in loaded} == {"before", "holdout", "assisted"}
    assert measured.start == date(2026, 6, 29) and measured.end == end
    total = measured.total
    assert total.holdout == sum(1 for r in records if r.arm == "holdout")
    assert total.before == sum(1 for r in records if r.arm == "before")
    # Half the tickets in categories 30 % faster: the pooled median drops, both ways.
    assert total.controlled["first_response"].significant
    assert total.before_after["first_response"].status == "ok"
    # Nothing planted on reopens: the interval holds zero.
    assert total.controlled["reopen_rate"].contains(0.0)
    assert total.minutes_saved is not None and total.minutes_saved.status == "ok"
    # The planted saving in expectation: 30 % of the mean log-normal time (median × e^(σ²/2))
    # on every assisted ticket of the three planted categories.
    expected = sum(
        0.3 * spec.first_response_median_min * math.exp(config.sigma**2 / 2)
        for r in records
        for spec in DEFAULT_SPECS
        if r.arm == "assisted" and r.category == spec.name and spec.first_response_effect
    )
    saved = total.minutes_saved
    assert saved.minutes is not None and saved.minutes > 0
    assert saved.low is not None and saved.high is not None
    assert saved.low <= expected <= saved.high
    assert [week for week, _ in measured.weekly] == sorted(week for week, _ in measured.weekly)


def test_report_and_digest_show_the_effect_with_intervals_and_the_holdout():
    records = simulate(seed=5)
    measured = measure(records, date(2026, 6, 29), date(2026, 9, 20), _settings())
    texts = load_texts()
    empty = CategoryStats(None, 0, 0, 0, 0, 0, 0, 0, None, None, None, 0, 0, 0.0)
    html = render_html(
        "Отчёт",
        "неделя",
        [],
        empty,
        {},
        texts=texts,
        effect=measured,
        fallback_minutes={None: 123.0},
    )
    assert texts.effect_heading_effect in html
    assert f"в контрольной группе (бот не отвечал):\n{measured.total.holdout}" in html or (
        str(measured.total.holdout) in html
    )
    for effect in measured.per_category:
        assert effect.category in html
    assert html.count("[") >= 6 * 4  # every category: four metrics with intervals
    assert "До/после" in html and "сезонность" in html
    assert html.count("data:image/png;base64,") == 2  # effect by category, effect by week
    markdown = effect_markdown(measured, texts)
    assert markdown.count("\n") == 2 + len(measured.per_category)
    digest = digest_text(date(2026, 9, 20), {"tickets": 10}, [], texts, effect=measured)
    assert "контрольная группа" in digest
    assert any(line.startswith("• Доступ и права: −") for line in digest.splitlines())


def test_under_the_minimum_sample_the_report_says_so_and_falls_back_to_constants():
    few = [
        TicketRecord(
            i,
            "Уведомления",
            "holdout" if i % 10 == 0 else "assisted",
            date(2026, 7, 1),
            600.0,
            3600.0,
            False,
            2,
            "accepted",
        )
        for i in range(100)
    ]
    measured = measure(few, date(2026, 7, 1), date(2026, 7, 1), _settings(assistant_start=None))
    texts = load_texts()
    markdown = effect_markdown(measured, texts, {"Уведомления": 40.0})
    assert "мало данных" in markdown
    assert "≈40 (оценка по константам)" in markdown
    assert "До/после" not in markdown
