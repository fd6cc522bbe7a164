"""A period's effect report: statistics, charts, Markdown table and HTML page at once.

The daily ``category_stats`` asset, the weekly report and ``kb effect report`` all show
the same thing for different periods; this is the one place that assembles it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import psycopg

from kb_core.effect.report import (
    EffectThresholds,
    build_charts,
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
    texts = load_texts(settings.bot_texts_path)
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
    html = render_html(title, label, stats, total, charts, thresholds=thresholds, texts=texts)
    return PeriodReport(start, end, stats, total, charts, markdown_table(stats, total, texts), html)
