"""When assets materialise: the cron conditions and the time zone they are read in.

The assets are declared with the conditions in ``DEFAULT_TIMEZONE``;
``kb_assets.definitions.build_definitions`` re-times them in the configured one
(``with_timezone``), so the nightly refresh follows the organisation's clock.
"""

from collections.abc import Callable

import dagster as dg

from kb_core.settings import ScheduleSettings, default_of

# The settings' default zone, so assets imported on their own (tests, the CLI's in-process
# runs) behave as the definitions built from default settings.
DEFAULT_TIMEZONE: str = default_of(ScheduleSettings, "stats_timezone")

# Sources refresh daily at night; everything downstream follows eagerly.
SOURCE_REFRESH_CRON = "0 3 * * *"
MAINTENANCE_CRON = "0 5 * * 0"
# The day is over at midnight; at 04:00 its tickets and the night's refresh are in.
AFTER_THE_DAY_CRON = "0 4 * * *"
WEEKLY_REPORT_CRON = "0 7 * * 1"


def daily_source_refresh(timezone: str = DEFAULT_TIMEZONE) -> dg.AutomationCondition:
    return dg.AutomationCondition.on_cron(SOURCE_REFRESH_CRON, cron_timezone=timezone)


def weekly_maintenance(timezone: str = DEFAULT_TIMEZONE) -> dg.AutomationCondition:
    return dg.AutomationCondition.on_cron(MAINTENANCE_CRON, cron_timezone=timezone)


def after_the_day(timezone: str = DEFAULT_TIMEZONE) -> dg.AutomationCondition:
    return dg.AutomationCondition.on_cron(AFTER_THE_DAY_CRON, cron_timezone=timezone)


def weekly_report(timezone: str = DEFAULT_TIMEZONE) -> dg.AutomationCondition:
    # Monday 07:00, on the statistics as they are. Not `on_cron`: that also waits for every
    # parent to update *after* the tick, and category_stats updates at 04:00, so the report
    # would slip to Tuesday and cover Tuesday to Monday.
    tick: dg.AutomationCondition[dg.AssetKey | dg.AssetCheckKey] = (
        dg.AutomationCondition.cron_tick_passed(WEEKLY_REPORT_CRON, cron_timezone=timezone)
    )
    return tick.since_last_handled() & ~dg.AutomationCondition.in_progress()


DAILY_SOURCE_REFRESH = daily_source_refresh()
DOWNSTREAM = dg.AutomationCondition.eager()
# A check is only part of an automation-launched run when its own condition requests it:
# without one, the daemon's nightly run would skip the blocking PII and evaluation checks
# and promotion would refuse the unchecked candidate. Eager: in the same run as its asset.
CHECK_WITH_ASSET = dg.AutomationCondition.eager()

# Which cron condition each timed asset carries, to re-time it (see with_timezone).
TIMED: dict[str, Callable[[str], dg.AutomationCondition]] = {
    "person_directory": daily_source_refresh,
    "raw_files": daily_source_refresh,
    "raw_confluence_pages": daily_source_refresh,
    "raw_jira_issues": daily_source_refresh,
    "raw_pyrus_tickets": daily_source_refresh,
    "kb_corrections": daily_source_refresh,
    "source_event_updates": daily_source_refresh,
    "index_maintenance": weekly_maintenance,
    "ticket_categories": after_the_day,
    "weekly_effect_report": weekly_report,
}


def with_timezone(asset: dg.AssetsDefinition, timezone: str) -> dg.AssetsDefinition:
    """The asset with its cron condition read in ``timezone`` (others unchanged)."""
    if timezone == DEFAULT_TIMEZONE:
        return asset

    def retime(spec: dg.AssetSpec) -> dg.AssetSpec:
        condition = TIMED.get(spec.key.to_user_string())
        if condition is None:
            return spec
        return spec.replace_attributes(automation_condition=condition(timezone))

    return asset.map_asset_specs(retime)


def daily_partitions(start_date: str, timezone: str) -> dg.DailyPartitionsDefinition:
    """The effect statistics' days (KB_STATS_START_DATE, KB_STATS_TIMEZONE)."""
    return dg.DailyPartitionsDefinition(start_date=start_date, timezone=timezone)
