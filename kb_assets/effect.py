"""Ticket categories and the assistant's measured effect, per day, as Dagster assets.

Both daily assets are partitioned by day (KB_STATS_TIMEZONE), so a day can be recomputed
or backfilled on its own and a missing day is visible in the UI. The data lives in
PostgreSQL (``ticket_outcomes``); ``category_stats`` reads it with ``deps=`` rather than
loading upstream partitions, and the weekly report reads seven days the same way.
"""

from dataclasses import asdict
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg

from kb_assets.automation import DEFAULT_TIMEZONE, after_the_day, daily_partitions, weekly_report
from kb_assets.resources import (
    DatabaseResource,
    EmbedderResource,
    NotificationsResource,
    PyrusResource,
)
from kb_core.charts import png_data_uri
from kb_core.effect.collect import collect_days
from kb_core.effect.measured import MeasuredEffect
from kb_core.effect.reporting import period_report
from kb_core.notify import digest_text, reports_dir, title, weekly_report_text, write_report
from kb_core.settings import ScheduleSettings, default_of

# Declared with the settings' defaults; kb_assets.definitions re-partitions and re-times
# the assets from the configured settings (daily_partitions, automation.with_timezone).
DAILY = daily_partitions(default_of(ScheduleSettings, "stats_start_date"), DEFAULT_TIMEZONE)
AFTER_THE_DAY = after_the_day()
WEEKLY = weekly_report()


def _day(context: dg.AssetExecutionContext) -> date:
    return date.fromisoformat(context.partition_key)


@dg.asset(
    group_name="effect",
    partitions_def=DAILY,
    description="The day's helpdesk tickets: category (the agent's, the bot's, or "
    "classified now), whether the bot answered and how its draft was used, response times.",
    kinds={"postgres"},
    automation_condition=AFTER_THE_DAY,
)
def ticket_categories(
    context: dg.AssetExecutionContext,
    database: DatabaseResource,
    pyrus: PyrusResource,
    embedder: EmbedderResource,
) -> dg.MaterializeResult:
    if not pyrus.enabled or not pyrus.form_ids:
        context.log.info("Pyrus tickets not configured (KB_PYRUS_LOGIN / _FORM_IDS): skipped")
        return dg.MaterializeResult(metadata={"enabled": False})
    day = _day(context)
    with pyrus.client() as client, database.connection() as conn:
        rows = collect_days(
            conn, client, [day], pyrus.settings, pyrus.form_ids, embedder.get(), learn=True
        )
    by_source: dict[str, int] = {}
    for row in rows:
        by_source[row.category_source] = by_source.get(row.category_source, 0) + 1
    context.log.info(f"{day}: {len(rows)} tickets, categories by {by_source}")
    return dg.MaterializeResult(
        metadata={
            "tickets": len(rows),
            "bot_answered": sum(1 for r in rows if r.outcome.bot_answered),
            "category_by": dg.MetadataValue.json(by_source),
        }
    )


@dg.asset(
    group_name="effect",
    partitions_def=DAILY,
    deps=[ticket_categories],
    description="Per category and in total for the day: volumes, bot coverage, draft "
    "acceptance, response times, minutes saved; charts, an HTML report, the daily digest.",
    kinds={"postgres"},
    automation_condition=dg.AutomationCondition.eager(),
)
def category_stats(
    context: dg.AssetExecutionContext,
    database: DatabaseResource,
    notifications: NotificationsResource,
) -> dg.MaterializeResult:
    settings = notifications.settings
    day = _day(context)
    with database.connection() as conn:
        report = period_report(conn, day, day, settings, title=title("digest"))
    files = write_report(report.html, reports_dir(settings) / "daily", day.isoformat(), None)
    sent = notifications.send(
        "digest",
        title("digest"),
        digest_text(
            day, asdict(report.total), [asdict(s) for s in report.stats], effect=report.effect
        ),
    )
    charts = "\n\n".join(
        f"**{caption}**\n\n![{caption}]({png_data_uri(png)})"
        for caption, png in report.charts.items()
    )
    total = report.total
    return dg.MaterializeResult(
        metadata={
            "tickets": total.tickets,
            "bot_answered": total.bot_answered,
            "coverage": round(total.coverage or 0.0, 4),
            "acceptance_rate": round(total.acceptance_rate or 0.0, 4),
            "minutes_saved": round(total.minutes_saved, 1),
            "first_response_median_min": total.first_response_median_min or 0.0,
            "table": dg.MetadataValue.md(report.markdown),
            "charts": dg.MetadataValue.md(charts),
            "report": dg.MetadataValue.path(str(files.html_path)),
            "digest_sent": sent,
            **_effect_metadata(report.effect, report.effect_markdown),
        }
    )


@dg.asset(
    group_name="effect",
    deps=[category_stats],
    description="The last seven complete days' effect as a document: PDF through the "
    "corporate print service (KB_PRINT_SERVICE_URL), else HTML; announced in the messenger.",
    kinds={"postgres"},
    automation_condition=WEEKLY,
)
def weekly_effect_report(
    context: dg.AssetExecutionContext,
    database: DatabaseResource,
    notifications: NotificationsResource,
) -> dg.MaterializeResult:
    settings = notifications.settings
    end = datetime.now(ZoneInfo(settings.schedule.stats_timezone)).date() - timedelta(days=1)
    start = end - timedelta(days=6)
    with database.connection() as conn:
        report = period_report(conn, start, end, settings, title=title("weekly_report"))
    stem = f"effect-{start.isoformat()}-{end.isoformat()}"
    files = write_report(
        report.html, reports_dir(settings) / "weekly", stem, notifications.printer()
    )
    if files.error:
        context.log.warning(f"print service failed, the report stays HTML: {files.error}")
    location = str(files.pdf_path or files.html_path)
    notifications.send(
        "weekly_report", title("weekly_report"), weekly_report_text(report.label, location)
    )
    return dg.MaterializeResult(
        metadata={
            "period": report.label,
            "tickets": report.total.tickets,
            "minutes_saved": round(report.total.minutes_saved, 1),
            "report": dg.MetadataValue.path(location),
            "pdf": files.pdf_path is not None,
            **_effect_metadata(report.effect, report.effect_markdown),
        }
    )


def _effect_metadata(effect: MeasuredEffect | None, table: str) -> dict[str, Any]:
    """The measured effect in a partition's metadata: each day's materialisation keeps
    that day's figures, so the partitions are the effect's daily history."""
    if effect is None:
        return {}
    metadata: dict[str, Any] = {
        "effect_window": f"{effect.start.isoformat()} — {effect.end.isoformat()}",
        "holdout_tickets": effect.total.holdout,
        "assisted_tickets": effect.total.assisted,
        "effect_table": dg.MetadataValue.md(table),
    }
    first = effect.total.controlled.get("first_response")
    if first is not None and first.estimate is not None:
        metadata["first_response_change"] = round(first.estimate, 4)
        metadata["first_response_change_low"] = round(first.low or 0.0, 4)
        metadata["first_response_change_high"] = round(first.high or 0.0, 4)
    return metadata


EFFECT_ASSETS = [ticket_categories, category_stats, weekly_effect_report]
