"""The measured effect of a period, read from ``ticket_outcomes`` and ``ticket_arms``.

Which arm a stored ticket is in:

- created before KB_EFFECT_ASSISTANT_START: **before** (the bot never saw it);
- a recorded arm (``ticket_arms``): **holdout** or **assisted**, randomised;
- no recorded arm (the holdout was off): **assisted**, not randomised — it counts for
  before/after, not for the controlled comparison.

The window is the ``KB_EFFECT_WINDOW_DAYS`` days up to the report's last day: a week
holds too few holdout tickets per category for an interval worth reading, so every
report (daily, weekly) shows the effect over the same rolling window. The before/after
baseline is the same number of days before the start date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import psycopg

from kb_core.effect.estimate import (
    CategoryEffect,
    Effect,
    EstimateConfig,
    RecordArm,
    TicketRecord,
    estimate_effects,
    weekly_effect,
)
from kb_core.settings import Settings


@dataclass(frozen=True)
class EffectSettings:
    window_days: int
    assistant_start: date | None
    holdout_enabled: bool
    holdout_share: float
    estimate: EstimateConfig
    minutes_fallback: bool

    @classmethod
    def from_settings(cls, settings: Settings) -> EffectSettings:
        return cls(
            window_days=settings.effect.window_days,
            assistant_start=settings.effect.assistant_start,
            holdout_enabled=settings.effect.holdout_enabled,
            holdout_share=settings.effect.holdout_share,
            estimate=EstimateConfig(
                min_sample=settings.effect.min_sample,
                level=settings.effect.confidence_level,
                resamples=settings.effect.bootstrap_resamples,
            ),
            minutes_fallback=settings.effect.minutes_fallback,
        )


@dataclass(frozen=True)
class MeasuredEffect:
    start: date
    end: date  # inclusive
    per_category: list[CategoryEffect]
    total: CategoryEffect
    weekly: list[tuple[date, Effect]]  # controlled first-response effect per week
    config: EffectSettings

    @property
    def has_baseline(self) -> bool:
        return self.config.assistant_start is not None and self.total.before > 0


_RECORDS = """
SELECT o.task_id, o.category, o.day, o.first_response_s, o.resolution_s, o.reopened,
       o.agent_replies, o.outcome, a.arm
FROM ticket_outcomes o LEFT JOIN ticket_arms a ON a.task_id = o.task_id
WHERE o.day BETWEEN %(start)s AND %(end)s
   OR (%(baseline_start)s::date IS NOT NULL
       AND o.day >= %(baseline_start)s::date AND o.day < %(assistant_start)s::date)
ORDER BY o.day, o.task_id
"""


def load_records(
    conn: psycopg.Connection[Any],
    start: date,
    end: date,
    assistant_start: date | None = None,
    baseline_days: int = 0,
) -> list[TicketRecord]:
    """Tickets of ``start``..``end`` and, with a start date, the ``baseline_days`` before it."""
    baseline_start = (
        assistant_start - timedelta(days=baseline_days) if assistant_start is not None else None
    )
    rows = conn.execute(
        _RECORDS,
        {
            "start": start,
            "end": end,
            "baseline_start": baseline_start,
            "assistant_start": assistant_start,
        },
    ).fetchall()
    records = []
    for task_id, category, day, first, resolution, reopened, replies, outcome, arm in rows:
        kind: RecordArm
        if assistant_start is not None and day < assistant_start:
            kind, randomised = "before", True
        elif arm == "holdout":
            kind, randomised = "holdout", True
        else:
            kind, randomised = "assisted", arm == "assisted"
        records.append(
            TicketRecord(
                task_id=int(task_id),
                category=str(category),
                arm=kind,
                day=day,
                first_response_s=first,
                resolution_s=resolution,
                reopened=reopened,
                agent_replies=replies,
                outcome=outcome,
                randomised=randomised,
            )
        )
    return records


def measure(
    records: list[TicketRecord], start: date, end: date, config: EffectSettings
) -> MeasuredEffect:
    """Estimates over ready records (stored or simulated)."""
    per_category, total = estimate_effects(records, config.estimate)
    in_window = [r for r in records if r.arm != "before"]
    return MeasuredEffect(
        start, end, per_category, total, weekly_effect(in_window, config.estimate), config
    )


def measured_effect(
    conn: psycopg.Connection[Any], end: date, config: EffectSettings
) -> MeasuredEffect:
    """The effect over the window ending ``end`` (see the module docstring)."""
    start = end - timedelta(days=config.window_days - 1)
    if config.assistant_start is not None and start < config.assistant_start:
        start = config.assistant_start
    records = load_records(conn, start, end, config.assistant_start, config.window_days)
    return measure(records, start, end, config)
