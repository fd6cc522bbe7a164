"""Charts, a Markdown table and a self-contained HTML page of the bot's measured effect.

Inputs are the aggregates of ``kb_core.effect.stats`` only (category names and numbers),
so nothing here can leak ticket text or personal data. The Russian wording lives in
``config/texts_ru.yaml`` (keys ``effect_*``). Charts are PNG bytes (matplotlib, Agg: no
display on a server) in the style of the evaluation report (``evals/report.py``); the
page inlines them as ``data:`` URIs (``kb_core.charts``, shared with the evaluation
report) so it is one file that opens anywhere, with no scripts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import jinja2
import matplotlib.pyplot as plt
from matplotlib.dates import DateFormatter
from matplotlib.ticker import MaxNLocator

from kb_core.charts import figure_png, png_data_uri
from kb_core.effect.estimate import CategoryEffect, Effect, Metric
from kb_core.effect.measured import MeasuredEffect
from kb_core.effect.stats import CategoryStats
from kb_core.settings import Settings
from kb_core.texts import Texts, load_texts

MISSING = "—"


@dataclass(frozen=True)
class EffectThresholds:
    """The settings behind the numbers, printed in the report's "how it is measured"."""

    accepted: float
    edited: float
    minutes_accepted: float
    minutes_edited: float

    @classmethod
    def from_settings(cls, settings: Settings) -> EffectThresholds:
        return cls(
            accepted=settings.effect.accepted_similarity,
            edited=settings.effect.edited_similarity,
            minutes_accepted=settings.effect.minutes_accepted,
            minutes_edited=settings.effect.minutes_edited,
        )


def _number(value: float) -> str:
    return f"{value:g}" if float(value).is_integer() else f"{value:.1f}"


def _percent(value: float | None) -> str:
    return MISSING if value is None else f"{value * 100:.0f} %"


def _decimal(value: float | None) -> str:
    return MISSING if value is None else f"{value:.1f}"


def _columns(texts: Texts) -> list[tuple[str, Callable[[CategoryStats], str]]]:
    """(header, cell) of every column after the category's name, in table order."""
    return [
        (texts.effect_col_tickets, lambda s: str(s.tickets)),
        (texts.effect_col_bot_answered, lambda s: str(s.bot_answered)),
        (texts.effect_col_coverage, lambda s: _percent(s.coverage)),
        (texts.effect_col_accepted, lambda s: str(s.accepted)),
        (texts.effect_col_edited, lambda s: str(s.edited)),
        (texts.effect_col_rewritten, lambda s: str(s.rewritten)),
        (texts.effect_col_not_used, lambda s: str(s.not_used)),
        (texts.effect_col_no_reply, lambda s: str(s.no_reply)),
        (texts.effect_col_acceptance_rate, lambda s: _percent(s.acceptance_rate)),
        (
            texts.effect_col_first_response_median,
            lambda s: _decimal(s.first_response_median_min),
        ),
        (texts.effect_col_first_response_p90, lambda s: _decimal(s.first_response_p90_min)),
        (texts.effect_col_resolution_median, lambda s: _decimal(s.resolution_median_h)),
        (texts.effect_col_minutes_saved, lambda s: _number(s.minutes_saved)),
        (texts.effect_col_category_agreement, lambda s: _percent(s.category_agreement)),
    ]


def _table(
    stats: Sequence[CategoryStats], total: CategoryStats, texts: Texts
) -> tuple[list[str], list[list[str]]]:
    """Header and rows (one per category, then the total) as display strings."""
    columns = _columns(texts)
    header = [texts.effect_col_category, *(name for name, _ in columns)]
    rows = [[s.category or MISSING, *(cell(s) for _, cell in columns)] for s in [*stats]]
    rows.append([texts.effect_total, *(cell(total) for _, cell in columns)])
    return header, rows


def markdown_table(
    stats: Sequence[CategoryStats], total: CategoryStats, texts: Texts | None = None
) -> str:
    """The statistics as a Markdown table (Dagster metadata renders it)."""
    header, rows = _table(stats, total, texts or load_texts())

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return "\n".join(
        [line(header), "| " + " | ".join(["---"] * len(header)) + " |", *map(line, rows)]
    )


def coverage_chart(stats: Sequence[CategoryStats], texts: Texts | None = None) -> bytes:
    """Tickets per category beside those the bot answered, most tickets on top."""
    texts = texts or load_texts()
    names = [s.category or MISSING for s in stats]
    figure, axis = plt.subplots(figsize=(8, max(2.4, 0.5 * len(stats) + 1.2)))
    positions = list(range(len(stats)))
    height = 0.38
    for offset, label, values in (
        (-height / 2, texts.effect_series_tickets, [s.tickets for s in stats]),
        (height / 2, texts.effect_series_answered, [s.bot_answered for s in stats]),
    ):
        bars = axis.barh([p + offset for p in positions], values, height, label=label)
        axis.bar_label(bars, fontsize=7, padding=2)
    axis.set_yticks(positions)
    axis.set_yticklabels(names, fontsize=8)
    axis.invert_yaxis()
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_title(texts.effect_chart_coverage)
    axis.grid(axis="x", alpha=0.3)
    axis.legend(fontsize=8, loc="lower right")
    return figure_png(figure)


def trend_chart(trend: Sequence[Mapping[str, Any]], texts: Texts | None = None) -> bytes:
    """Tickets, drafts posted and drafts used per day (all categories), days without
    tickets drawn as zero rather than skipped."""
    texts = texts or load_texts()
    totals: dict[date, list[int]] = {}
    for row in trend:
        day = totals.setdefault(row["day"], [0, 0, 0])
        day[0] += int(row["tickets"])
        day[1] += int(row["answered"])
        day[2] += int(row["drafts_used"])
    days: list[date] = []
    if totals:
        current, last = min(totals), max(totals)
        while current <= last:
            days.append(current)
            current += timedelta(days=1)
    figure, axis = plt.subplots(figsize=(8, 3.6))
    for index, label in enumerate(
        (texts.effect_series_tickets, texts.effect_series_answered, texts.effect_series_drafts_used)
    ):
        values = [totals.get(day, [0, 0, 0])[index] for day in days]
        axis.plot(days, values, marker="o", markersize=3, label=label)  # type: ignore[arg-type]
    axis.set_ylim(bottom=0)
    axis.yaxis.set_major_locator(MaxNLocator(integer=True))
    axis.xaxis.set_major_formatter(DateFormatter("%d.%m"))  # type: ignore[no-untyped-call]
    axis.set_title(texts.effect_chart_trend)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3)
    return figure_png(figure)


def build_charts(
    stats: Sequence[CategoryStats],
    trend: Sequence[Mapping[str, Any]],
    texts: Texts | None = None,
) -> dict[str, bytes]:
    """The report's charts keyed by their caption, ready for ``render_html``."""
    texts = texts or load_texts()
    return {
        texts.effect_chart_coverage: coverage_chart(stats, texts),
        texts.effect_chart_trend: trend_chart(trend, texts),
    }


def _signed(value: float, digits: int) -> str:
    return f"{value:+.{digits}f}".replace("-", "−")


def format_effect(effect: Effect | None, texts: Texts) -> str:
    """«−30 % [−44; −13]» for times, percentage points for the reopen rate, a plain
    difference for agent replies; «мало данных» under the minimum sample."""
    if effect is None:
        return MISSING
    if effect.status != "ok" or effect.estimate is None:
        return texts.effect_insufficient
    assert effect.low is not None and effect.high is not None
    if effect.metric in ("first_response", "resolution"):
        scale, digits, unit = 100.0, 0, " %"
    elif effect.metric == "reopen_rate":
        scale, digits, unit = 100.0, 1, ""
    else:
        scale, digits, unit = 1.0, 2, ""
    return (
        f"{_signed(effect.estimate * scale, digits)}{unit} "
        f"[{_signed(effect.low * scale, digits)}; {_signed(effect.high * scale, digits)}]"
    )


def format_minutes(effect: CategoryEffect, fallback: float | None, texts: Texts) -> str:
    """Measured minutes saved with their interval, else the labelled constant estimate."""
    saved = effect.minutes_saved
    if saved is not None and saved.status == "ok" and saved.minutes is not None:
        assert saved.low is not None and saved.high is not None
        return f"{saved.minutes:.0f} [{saved.low:.0f}; {saved.high:.0f}]".replace("-", "−")
    if fallback is not None:
        return texts.effect_minutes_fallback.format(minutes=_number(fallback))
    return texts.effect_insufficient


_EFFECT_METRICS: tuple[tuple[str, Metric], ...] = (
    ("effect_col_first_response_change", "first_response"),
    ("effect_col_resolution_change", "resolution"),
    ("effect_col_reopen_change", "reopen_rate"),
    ("effect_col_replies_change", "agent_replies"),
)


def effect_table(
    measured: MeasuredEffect,
    texts: Texts,
    fallback_minutes: Mapping[str | None, float] | None = None,
) -> tuple[list[str], list[list[str]]]:
    """Header and rows (one per category, then the total) of the measured effect."""
    header = [
        texts.effect_col_category,
        texts.effect_col_assisted,
        texts.effect_col_holdout,
        *(getattr(texts, key) for key, _ in _EFFECT_METRICS),
        texts.effect_col_minutes_measured,
    ]
    if measured.has_baseline:
        header.append(texts.effect_col_before_after)
    rows = []
    for effect in [*measured.per_category, measured.total]:
        name = effect.category if effect.category is not None else texts.effect_total
        fallback = (fallback_minutes or {}).get(effect.category)
        row = [
            name,
            str(effect.assisted),
            str(effect.holdout),
            *(format_effect(effect.controlled.get(metric), texts) for _, metric in _EFFECT_METRICS),
            format_minutes(effect, fallback, texts),
        ]
        if measured.has_baseline:
            row.append(format_effect(effect.before_after.get("first_response"), texts))
        rows.append(row)
    return header, rows


def effect_markdown(
    measured: MeasuredEffect,
    texts: Texts | None = None,
    fallback_minutes: Mapping[str | None, float] | None = None,
) -> str:
    """The measured effect as a Markdown table (Dagster metadata renders it)."""
    header, rows = effect_table(measured, texts or load_texts(), fallback_minutes)

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"

    return "\n".join(
        [line(header), "| " + " | ".join(["---"] * len(header)) + " |", *map(line, rows)]
    )


def effect_chart(measured: MeasuredEffect, texts: Texts | None = None) -> bytes:
    """Per category (and in total) the first-response change with its interval; a
    category under the minimum sample is named with «мало данных» and has no bar."""
    texts = texts or load_texts()
    effects = [*measured.per_category, measured.total]
    figure, axis = plt.subplots(figsize=(8, max(2.4, 0.45 * len(effects) + 1.2)))
    for position, effect in enumerate(effects):
        result = effect.controlled.get("first_response")
        if result is None or result.status != "ok" or result.estimate is None:
            axis.text(
                0,
                position,
                texts.effect_insufficient,
                va="center",
                ha="center",
                fontsize=8,
                color="#777",
            )
            continue
        assert result.low is not None and result.high is not None
        colour = "#2b7a3d" if result.high < 0 else "#b03a2e" if result.low > 0 else "#555"
        axis.errorbar(
            result.estimate * 100,
            position,
            xerr=[[(result.estimate - result.low) * 100], [(result.high - result.estimate) * 100]],
            fmt="o",
            color=colour,
            capsize=4,
        )
    axis.axvline(0, color="#999", linewidth=1)
    axis.set_yticks(range(len(effects)))
    axis.set_yticklabels(
        [e.category if e.category is not None else texts.effect_total for e in effects],
        fontsize=8,
    )
    axis.set_ylim(len(effects) - 0.5, -0.5)
    axis.set_xlabel("%")
    axis.set_title(texts.effect_chart_effect, fontsize=10)
    axis.grid(axis="x", alpha=0.3)
    return figure_png(figure)


def effect_trend_chart(weekly: Sequence[tuple[date, Effect]], texts: Texts | None = None) -> bytes:
    """The controlled first-response change per week with its interval; weeks under the
    minimum sample are gaps."""
    texts = texts or load_texts()
    figure, axis = plt.subplots(figsize=(8, 3.2))
    shown = [(week, e) for week, e in weekly if e.status == "ok" and e.estimate is not None]
    if shown:
        weeks = [week for week, _ in shown]
        axis.plot(
            weeks,  # type: ignore[arg-type]
            [(e.estimate or 0.0) * 100 for _, e in shown],
            marker="o",
            markersize=3,
        )
        axis.fill_between(
            weeks,  # type: ignore[arg-type]
            [(e.low or 0.0) * 100 for _, e in shown],
            [(e.high or 0.0) * 100 for _, e in shown],
            alpha=0.2,
        )
    axis.axhline(0, color="#999", linewidth=1)
    axis.xaxis.set_major_formatter(DateFormatter("%d.%m"))  # type: ignore[no-untyped-call]
    axis.set_ylabel("%")
    axis.set_title(texts.effect_chart_effect_trend, fontsize=10)
    axis.grid(alpha=0.3)
    return figure_png(figure)


_PAGE = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
    """<!doctype html>
<html lang="ru"><head><meta charset="utf-8"><title>{{ title }}</title><style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:13px}
td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}
table.effect td{white-space:nowrap}
th{background:#f3f3f3} tr.total td{font-weight:bold;background:#fafafa}
img{max-width:100%} figure{margin:1em 0} figcaption{color:#555;font-size:13px}
</style></head><body>
<h1>{{ title }}</h1>
<p>{{ period }}</p>
{% if effect %}<h2>{{ texts.effect_heading_effect }}</h2>
<p>{{ effect.summary }}</p>
<table class="effect">
<thead><tr>{% for cell in effect.header %}<th>{{ cell }}</th>{% endfor %}</tr></thead><tbody>
{% for row in effect.rows %}<tr{% if loop.last %} class="total"{% endif %}>
{%- for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>
<p>{{ effect.note }}</p>
<p>{{ effect.caveat }}</p>
{% for caption, uri in effect.charts %}<figure><img alt="{{ caption }}" src="{{ uri }}">
<figcaption>{{ caption }}</figcaption></figure>
{% endfor %}{% endif %}
{% if empty %}<p>{{ texts.effect_no_tickets }}</p>
{% else %}
{% if charts %}<h2>{{ texts.effect_heading_charts }}</h2>
{% for caption, uri in charts %}<figure><img alt="{{ caption }}" src="{{ uri }}">
<figcaption>{{ caption }}</figcaption></figure>
{% endfor %}{% endif %}
<h2>{{ texts.effect_heading_categories }}</h2>
<table><thead><tr>{% for cell in header %}<th>{{ cell }}</th>{% endfor %}</tr></thead><tbody>
{% for row in rows %}<tr{% if loop.last %} class="total"{% endif %}>
{%- for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</tbody></table>
{% endif %}
<h2>{{ texts.effect_heading_method }}</h2>
<p>{{ texts.effect_method }}</p>
{% if effect %}<p>{{ texts.effect_method_effect }}</p>{% endif %}
{% if thresholds %}<p>{{ thresholds }}</p>{% endif %}
</body></html>
"""
)


def render_html(
    title: str,
    period_label: str,
    stats: Sequence[CategoryStats],
    total: CategoryStats,
    charts: Mapping[str, bytes],
    *,
    thresholds: EffectThresholds | None = None,
    texts: Texts | None = None,
    effect: MeasuredEffect | None = None,
    fallback_minutes: Mapping[str | None, float] | None = None,
) -> str:
    """One self-contained Russian page: the measured effect (when given), charts (inline
    PNG), the table, the method."""
    texts = texts or load_texts()
    header, rows = _table(stats, total, texts)
    return _PAGE.render(
        effect=_effect_section(effect, texts, fallback_minutes) if effect is not None else None,
        title=title,
        period=texts.effect_period.format(period=period_label),
        empty=total.tickets == 0,
        charts=[(caption, png_data_uri(png)) for caption, png in charts.items()],
        header=header,
        rows=rows,
        texts=texts,
        thresholds=(
            texts.effect_method_thresholds.format(
                accepted=_number(thresholds.accepted),
                edited=_number(thresholds.edited),
                minutes_accepted=_number(thresholds.minutes_accepted),
                minutes_edited=_number(thresholds.minutes_edited),
            )
            if thresholds is not None
            else None
        ),
    )


def _effect_section(
    measured: MeasuredEffect,
    texts: Texts,
    fallback_minutes: Mapping[str | None, float] | None,
) -> dict[str, Any]:
    header, rows = effect_table(measured, texts, fallback_minutes)
    config = measured.config
    window = f"{measured.start.isoformat()} — {measured.end.isoformat()}"
    if measured.has_baseline:
        assert config.assistant_start is not None
        caveat = texts.effect_before_after_caveat.format(
            start=config.assistant_start.isoformat(), before=measured.total.before
        )
    else:
        caveat = texts.effect_no_baseline
    return {
        "summary": texts.effect_holdout_summary.format(
            window=window,
            assisted=measured.total.assisted,
            holdout=measured.total.holdout,
            share=_number(round(config.holdout_share * 100, 1)),
            state=texts.effect_holdout_on if config.holdout_enabled else texts.effect_holdout_off,
        ),
        "header": header,
        "rows": rows,
        "note": texts.effect_interval_note.format(
            level=_number(round(config.estimate.level * 100, 1)),
            insufficient=texts.effect_insufficient,
            min_sample=config.estimate.min_sample,
        ),
        "caveat": caveat,
        "charts": [
            (texts.effect_chart_effect, png_data_uri(effect_chart(measured, texts))),
            (
                texts.effect_chart_effect_trend,
                png_data_uri(effect_trend_chart(measured.weekly, texts)),
            ),
        ],
    }
