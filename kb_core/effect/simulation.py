"""Simulated ticket histories with a planted effect, to check the estimator against.

A history spans ``before_days`` without the assistant and ``days`` with it. Tickets
arrive per category as a Poisson process (fewer at weekends) and are numbered in arrival
order; from the assistant's start each ticket is in the holdout or assisted by the same
id hash the bot uses. Times are log-normal around each category's median (response times
are heavy-tailed); an assisted ticket of a category with ``first_response_effect`` 0.3
gets its first response after 0.7 of the time it would have had, so the planted change of
the median is exactly -0.3, and 0 where nothing is planted. Reopens and agent replies
are drawn the same way for both arms unless an effect is planted on them too.

Numbers only: no text, nothing personal. Used by the tests and ``kb demo``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import psycopg

from kb_core.effect.estimate import RecordArm, TicketRecord
from kb_core.effect.holdout import in_holdout

WEEKEND_FACTOR = 0.3
FIRST_TICKET_ID = 500_000


@dataclass(frozen=True)
class CategorySpec:
    name: str
    tickets_per_day: float
    first_response_median_min: float
    resolution_median_h: float
    first_response_effect: float = 0.0  # 0.3: assisted tickets answered 30 % sooner
    resolution_effect: float = 0.0
    reopen_rate: float = 0.05
    replies_mean: float = 2.0
    acceptance: float = 0.5  # share of assisted tickets whose draft was accepted or edited


#: Three categories with a planted 30 % faster first response, three without.
PLANTED = 0.3
DEFAULT_SPECS: tuple[CategorySpec, ...] = (
    CategorySpec("Доступ и права", 14, 45, 6, first_response_effect=PLANTED, acceptance=0.6),
    CategorySpec("Уведомления", 10, 30, 4, first_response_effect=PLANTED, acceptance=0.55),
    CategorySpec("Интеграции и API", 8, 90, 20, first_response_effect=PLANTED, acceptance=0.4),
    CategorySpec("Формы и маршруты", 12, 60, 10, acceptance=0.2),
    CategorySpec("Тарифы и оплата", 9, 40, 8, acceptance=0.1),
    CategorySpec("Отчёты и реестры", 7, 120, 24, acceptance=0.15),
)


@dataclass(frozen=True)
class SimulationConfig:
    start: date = date(2026, 5, 4)
    before_days: int = 56
    days: int = 84
    holdout_share: float = 0.1
    sigma: float = 0.8  # of log(time): p90 ≈ 2.8 × the median


def simulate(
    specs: Sequence[CategorySpec] = DEFAULT_SPECS,
    config: SimulationConfig | None = None,
    *,
    seed: int = 0,
) -> list[TicketRecord]:
    """One history: every ticket of ``before_days`` + ``days`` days, in arrival order."""
    config = config or SimulationConfig()
    rng = np.random.default_rng(seed)
    assistant_start = config.start + timedelta(days=config.before_days)
    records: list[TicketRecord] = []
    task_id = FIRST_TICKET_ID
    for offset in range(config.before_days + config.days):
        day = config.start + timedelta(days=offset)
        factor = WEEKEND_FACTOR if day.weekday() >= 5 else 1.0
        for spec in specs:
            for _ in range(int(rng.poisson(spec.tickets_per_day * factor))):
                task_id += 1
                arm: RecordArm
                if day < assistant_start:
                    arm = "before"
                elif in_holdout(task_id, config.holdout_share):
                    arm = "holdout"
                else:
                    arm = "assisted"
                records.append(_ticket(rng, task_id, spec, arm, day, config.sigma))
    return records


def _ticket(
    rng: np.random.Generator,
    task_id: int,
    spec: CategorySpec,
    arm: RecordArm,
    day: date,
    sigma: float,
) -> TicketRecord:
    helped = arm == "assisted"
    first = spec.first_response_median_min * 60.0 * float(rng.lognormal(0.0, sigma))
    resolution = spec.resolution_median_h * 3600.0 * float(rng.lognormal(0.0, sigma))
    if helped:
        first *= 1.0 - spec.first_response_effect
        resolution *= 1.0 - spec.resolution_effect
    outcome = "not_used"
    if helped:
        outcome = "accepted" if rng.random() < spec.acceptance else "rewritten"
    return TicketRecord(
        task_id=task_id,
        category=spec.name,
        arm=arm,
        day=day,
        first_response_s=first,
        # A ticket cannot be resolved before its first answer.
        resolution_s=max(resolution, first),
        reopened=bool(rng.random() < spec.reopen_rate),
        agent_replies=1 + int(rng.poisson(max(spec.replies_mean - 1.0, 0.0))),
        outcome=outcome,
    )


def store(
    conn: psycopg.Connection[Any], records: Sequence[TicketRecord], holdout_share: float
) -> int:
    """Write a simulated history where collected tickets go (``ticket_outcomes``, and
    ``ticket_arms`` for randomised tickets), so reports can be drawn from it (tests, a
    demonstration database). Never into a production database: the ids are made up."""
    outcomes = []
    arms = []
    for r in records:
        helped = r.arm == "assisted"
        outcomes.append(
            (
                r.task_id,
                r.day,
                r.category,
                helped,
                r.outcome or ("rewritten" if helped else "not_used"),
                r.first_response_s,
                r.resolution_s,
                r.resolution_s is not None,
                r.agent_replies,
                r.reopened,
            )
        )
        if r.arm != "before" and r.randomised:
            arms.append((r.task_id, r.arm, holdout_share))
    with conn.transaction(), conn.cursor() as cursor:
        cursor.executemany(
            """
            INSERT INTO ticket_outcomes (task_id, day, category, category_source, bot_answered,
                                         outcome, first_response_s, resolution_s, is_closed,
                                         agent_replies, reopened)
            VALUES (%s, %s, %s, 'agent', %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (task_id) DO NOTHING
            """,
            outcomes,
        )
        cursor.executemany(
            """
            INSERT INTO ticket_arms (task_id, arm, holdout_share) VALUES (%s, %s, %s)
            ON CONFLICT (task_id) DO NOTHING
            """,
            arms,
        )
    return len(outcomes)
