"""A period's effect report: statistics, charts, Markdown table and HTML page at once.

The daily ``category_stats`` asset, the weekly report and ``kb effect report`` all show
the same thing for different periods; this is the one place that assembles it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import psycopg

from kb_core.effect.measured import EffectSettings, MeasuredEffect, measured_effect
from kb_core.effect.report import (
    EffectThresholds,
    build_charts,
    effect_markdown,
    markdown_table,
    render_html,
)
from kb_core.effect.stats import CategoryStats, category_stats, daily_trend
from kb_core.settings import Settings
from kb_core.texts import load_texts

TREND_DAYS = 30


@dataclass(frozen=True)
class PeriodReport:
    start: date
    end: date  # inclusive
    stats: list[CategoryStats]
    total: CategoryStats
    charts: dict[str, bytes]  # caption → PNG
    markdown: str
    html: str
    effect: MeasuredEffect | None = None
    effect_markdown: str = ""

    @property
    def label(self) -> str:
        if self.start == self.end:
            return self.start.isoformat()
        return f"{self.start.isoformat()} — {self.end.isoformat()}"


def period_report(
    conn: psycopg.Connection[Any],
    start: date,
    end: date,
    settings: Settings,
    *,
    title: str,
    trend_days: int = TREND_DAYS,
) -> PeriodReport:
    """Statistics of ``start``..``end``; the trend chart shows the ``trend_days`` up to
    ``end`` (at least the period), so a single day is seen against its month."""
    texts = load_texts(settings.bot.texts_path)
    thresholds = EffectThresholds.from_settings(settings)
    stats, total = category_stats(
        conn,
        start,
        end,
        minutes_accepted=thresholds.minutes_accepted,
        minutes_edited=thresholds.minutes_edited,
    )
    trend_start = min(start, end - timedelta(days=trend_days - 1))
    charts = build_charts(stats, daily_trend(conn, trend_start, end), texts)
    label = start.isoformat() if start == end else f"{start.isoformat()} — {end.isoformat()}"
    effect = measured_effect(conn, end, EffectSettings.from_settings(settings))
    fallback = (
        _constant_minutes(conn, effect, thresholds) if settings.effect.minutes_fallback else None
    )
    html = render_html(
        title,
        label,
        stats,
        total,
        charts,
        thresholds=thresholds,
        texts=texts,
        effect=effect,
        fallback_minutes=fallback,
    )
    return PeriodReport(
        start,
        end,
        stats,
        total,
        charts,
        markdown_table(stats, total, texts),
        html,
        effect,
        effect_markdown(effect, texts, fallback),
    )


def _constant_minutes(
    conn: psycopg.Connection[Any], effect: MeasuredEffect, thresholds: EffectThresholds
) -> dict[str | None, float]:
    """The constant-based estimate over the effect's window, per category and in total:
    the labelled fallback where the measured figure lacks data."""
    stats, total = category_stats(
        conn,
        effect.start,
        effect.end,
        minutes_accepted=thresholds.minutes_accepted,
        minutes_edited=thresholds.minutes_edited,
    )
    out: dict[str | None, float] = {s.category: s.minutes_saved for s in stats}
    out[None] = total.minutes_saved
    return out
