"""Storing ticket outcomes and adding them up per category and per day.

``ticket_outcomes`` holds one row per ticket (numbers and labels, no ticket text), so a
ticket read again after an agent replied or closed it simply replaces its row. Periods
are calendar days in the statistics time zone (the rows' ``day``), both ends included:
``category_stats(conn, d, d)`` is one day, the unit of the daily Dagster partitions.

Per category and for the whole period:

- coverage = tickets the bot answered / tickets;
- acceptance rate = (accepted + edited) / tickets with a draft and an agent reply — the
  share of drafts agents actually built on, among those they could have;
- first response and resolution: median (and p90 of first response) over the tickets
  that have one, so open tickets do not count as fast ones;
- minutes saved = accepted × KB_EFFECT_MINUTES_ACCEPTED + edited × KB_EFFECT_MINUTES_EDITED,
  an estimate that is only as good as those two settings;
- category agreement = among tickets whose category an agent set and the bot had
  proposed one, the share where both are the same category (case, ё/е and spacing
  ignored). Tickets where the bot's category was left in place are not counted, so this
  is how often the bot was right when a person made the decision.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg

from kb_core.effect.outcomes import CategorySource, TicketOutcome

CATEGORY_SOURCES: frozenset[str] = frozenset({"agent", "bot", "classifier"})


@dataclass(frozen=True)
class OutcomeRow:
    """A ticket's outcome with the category columns the caller settled on."""

    outcome: TicketOutcome
    category: str
    category_source: CategorySource
    category_confidence: float | None = None
    bot_category: str | None = None
    agent_action: str | None = None  # sent | corrected: what the agent explicitly did

    def __post_init__(self) -> None:
        if not self.category:
            raise ValueError(f"task {self.outcome.task_id}: empty category")
        if self.category_source not in CATEGORY_SOURCES:
            raise ValueError(
                f"task {self.outcome.task_id}: category_source {self.category_source!r} "
                f"is not one of {', '.join(sorted(CATEGORY_SOURCES))}"
            )


_UPSERT = """
INSERT INTO ticket_outcomes (
    task_id, form_id, day, category, category_source, category_confidence, bot_category,
    bot_answered, bot_mode, draft_similarity, outcome, first_response_s, resolution_s,
    is_closed, agent_action, agent_replies, reopened
) VALUES (
    %(task_id)s, %(form_id)s, %(day)s, %(category)s, %(category_source)s,
    %(category_confidence)s, %(bot_category)s, %(bot_answered)s, %(bot_mode)s,
    %(draft_similarity)s, %(outcome)s, %(first_response_s)s, %(resolution_s)s, %(is_closed)s,
    %(agent_action)s, %(agent_replies)s, %(reopened)s
)
ON CONFLICT (task_id) DO UPDATE SET
    form_id = EXCLUDED.form_id,
    day = EXCLUDED.day,
    category = EXCLUDED.category,
    category_source = EXCLUDED.category_source,
    category_confidence = EXCLUDED.category_confidence,
    bot_category = EXCLUDED.bot_category,
    bot_answered = EXCLUDED.bot_answered,
    bot_mode = EXCLUDED.bot_mode,
    draft_similarity = EXCLUDED.draft_similarity,
    outcome = EXCLUDED.outcome,
    first_response_s = EXCLUDED.first_response_s,
    resolution_s = EXCLUDED.resolution_s,
    is_closed = EXCLUDED.is_closed,
    agent_action = EXCLUDED.agent_action,
    agent_replies = EXCLUDED.agent_replies,
    reopened = EXCLUDED.reopened,
    updated_at = now()
"""


def upsert_outcomes(conn: psycopg.Connection[Any], rows: Iterable[OutcomeRow]) -> int:
    """Insert or replace each ticket's row (in one transaction); returns how many."""
    params = [
        {
            "task_id": row.outcome.task_id,
            "form_id": row.outcome.form_id,
            "day": row.outcome.day,
            "category": row.category,
            "category_source": row.category_source,
            "category_confidence": row.category_confidence,
            "bot_category": row.bot_category,
            "bot_answered": row.outcome.bot_answered,
            "bot_mode": row.outcome.bot_mode,
            "draft_similarity": row.outcome.draft_similarity,
            "outcome": row.outcome.outcome,
            "first_response_s": row.outcome.first_response_s,
            "resolution_s": row.outcome.resolution_s,
            "is_closed": row.outcome.is_closed,
            "agent_action": row.agent_action,
            "agent_replies": row.outcome.agent_replies,
            "reopened": row.outcome.reopened,
        }
        for row in rows
    ]
    if params:
        with conn.transaction(), conn.cursor() as cursor:
            cursor.executemany(_UPSERT, params)
    return len(params)


@dataclass(frozen=True)
class CategoryStats:
    """The bot's effect on one category's tickets (or on all of them: ``category`` None)."""

    category: str | None
    tickets: int
    bot_answered: int
    accepted: int
    edited: int
    rewritten: int
    not_used: int
    no_reply: int
    first_response_median_min: float | None
    first_response_p90_min: float | None
    resolution_median_h: float | None
    category_checked: int  # tickets an agent categorised after the bot proposed a category
    category_agreed: int
    minutes_saved: float

    @property
    def coverage(self) -> float | None:
        return self.bot_answered / self.tickets if self.tickets else None

    @property
    def replied(self) -> int:
        """Tickets with a draft and an agent reply: the drafts agents could judge."""
        return self.accepted + self.edited + self.rewritten

    @property
    def acceptance_rate(self) -> float | None:
        return (self.accepted + self.edited) / self.replied if self.replied else None

    @property
    def category_agreement(self) -> float | None:
        return self.category_agreed / self.category_checked if self.category_checked else None


def _norm(column: str) -> str:
    """SQL for a category name compared loosely: case, ё/е and spacing do not matter."""
    return f"lower(regexp_replace(translate(btrim({column}), 'Ёё', 'Ее'), '\\s+', ' ', 'g'))"


_STATS = f"""
SELECT
    GROUPING(category) = 1 AS is_total,
    category,
    count(*),
    count(*) FILTER (WHERE bot_answered),
    count(*) FILTER (WHERE outcome = 'accepted'),
    count(*) FILTER (WHERE outcome = 'edited'),
    count(*) FILTER (WHERE outcome = 'rewritten'),
    count(*) FILTER (WHERE outcome = 'not_used'),
    count(*) FILTER (WHERE outcome = 'no_reply'),
    percentile_cont(0.5) WITHIN GROUP (ORDER BY first_response_s) / 60.0,
    percentile_cont(0.9) WITHIN GROUP (ORDER BY first_response_s) / 60.0,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY resolution_s) / 3600.0,
    count(*) FILTER (WHERE category_source = 'agent' AND bot_category IS NOT NULL),
    count(*) FILTER (
        WHERE category_source = 'agent' AND bot_category IS NOT NULL
          AND {_norm("bot_category")} = {_norm("category")}
    )
FROM ticket_outcomes
WHERE day BETWEEN %(start)s AND %(end)s
GROUP BY GROUPING SETS ((category), ())
"""


def category_stats(
    conn: psycopg.Connection[Any],
    start: date,
    end: date,
    *,
    minutes_accepted: float,
    minutes_edited: float,
) -> tuple[list[CategoryStats], CategoryStats]:
    """Per-category statistics of days ``start``..``end`` (inclusive), most tickets first,
    and the same over all categories (``category`` None; all zeros for an empty period)."""
    per_category: list[CategoryStats] = []
    total: CategoryStats | None = None
    for row in conn.execute(_STATS, {"start": start, "end": end}).fetchall():
        accepted, edited = int(row[4]), int(row[5])
        stats = CategoryStats(
            category=None if row[0] else str(row[1]),
            tickets=int(row[2]),
            bot_answered=int(row[3]),
            accepted=accepted,
            edited=edited,
            rewritten=int(row[6]),
            not_used=int(row[7]),
            no_reply=int(row[8]),
            first_response_median_min=row[9],
            first_response_p90_min=row[10],
            resolution_median_h=row[11],
            category_checked=int(row[12]),
            category_agreed=int(row[13]),
            minutes_saved=accepted * minutes_accepted + edited * minutes_edited,
        )
        if row[0]:
            total = stats
        else:
            per_category.append(stats)
    per_category.sort(key=lambda s: (-s.tickets, s.category or ""))
    if total is None:  # GROUPING SETS yield no total row over zero input rows
        total = CategoryStats(None, 0, 0, 0, 0, 0, 0, 0, None, None, None, 0, 0, 0.0)
    return per_category, total


def daily_trend(conn: psycopg.Connection[Any], start: date, end: date) -> list[dict[str, Any]]:
    """Per day and category (days ``start``..``end`` inclusive), for charts: ``day``,
    ``category``, ``tickets``, ``answered`` (the bot posted a draft) and ``drafts_used``
    (accepted + edited)."""
    rows = conn.execute(
        """
        SELECT day, category, count(*), count(*) FILTER (WHERE bot_answered),
               count(*) FILTER (WHERE outcome IN ('accepted', 'edited'))
        FROM ticket_outcomes
        WHERE day BETWEEN %(start)s AND %(end)s
        GROUP BY day, category
        ORDER BY day, category
        """,
        {"start": start, "end": end},
    ).fetchall()
    return [
        {
            "day": r[0],
            "category": r[1],
            "tickets": int(r[2]),
            "answered": int(r[3]),
            "drafts_used": int(r[4]),
        }
        for r in rows
    ]
