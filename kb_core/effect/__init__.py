"""The assistant's measured effect: per-ticket outcomes, per-category statistics, reports.

``outcomes`` reads one Pyrus task (and the bot's draft for it) into numbers and labels,
``stats`` stores them in ``ticket_outcomes`` and adds them up, ``report`` draws them.
Pure domain code: the Dagster assets and the CLI call it, it calls neither.
"""

from kb_core.effect.outcomes import (
    OUTCOMES,
    TicketOutcome,
    category_from_task,
    draft_similarity,
    ticket_outcome,
)
from kb_core.effect.stats import (
    CategoryStats,
    OutcomeRow,
    category_stats,
    daily_trend,
    upsert_outcomes,
)

__all__ = [
    "OUTCOMES",
    "CategoryStats",
    "OutcomeRow",
    "TicketOutcome",
    "category_from_task",
    "category_stats",
    "daily_trend",
    "draft_similarity",
    "ticket_outcome",
    "upsert_outcomes",
]
