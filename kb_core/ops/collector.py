"""The database's figures as Prometheus metrics, computed when Prometheus scrapes.

Served by the bot API (always running, already scraped): the pipeline's persisted
counters (:mod:`kb_core.ops.counters`), index freshness and promotion history, the
evaluation metrics of the active version, the bot's queue and dead letters, and the
measured effect per category. Every replica serves the same figures: dashboards and
alerts aggregate them with ``max`` over instances.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import psycopg
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kb_core.notify.messenger import KINDS
from kb_core.ops.counters import COUNTERS, Connect, stored

log = logging.getLogger(__name__)

#: The effect gauges look back this many days of ticket outcomes.
EFFECT_WINDOW_DAYS = 7


class DatabaseCollector(Collector):
    """Reads the figures at each scrape (a handful of small aggregate queries)."""

    def __init__(self, connect: Connect) -> None:
        self._connect = connect

    def describe(self) -> list[Metric]:
        # Not described up front: registering must not query the database.
        return []

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "kb_ops_database_up", "1 when the database answered this scrape's queries."
        )
        try:
            with self._connect() as conn:
                metrics = list(_collect(conn))
        except Exception as exc:
            log.warning("database metrics unavailable: %s", type(exc).__name__)
            up.add_metric([], 0.0)
            yield up
            return
        up.add_metric([], 1.0)
        yield up
        yield from metrics


def _collect(conn: psycopg.Connection[Any]) -> Iterator[Metric]:
    yield from _persisted(conn)
    yield from _index(conn)
    yield from _evaluation(conn)
    yield from _queue(conn)
    yield from _effect(conn)


def _persisted(conn: psycopg.Connection[Any]) -> Iterator[Metric]:
    values: dict[str, dict[tuple[str, ...], float]] = {name: {} for name in COUNTERS}
    # Known label sets start at zero, so their first increase is an increase.
    for kind in KINDS:
        for outcome in ("sent", "failed"):
            values["kb_pipeline_notifications"][(kind, outcome)] = 0.0
    for outcome in ("passed", "failed"):
        values["kb_pipeline_pii_checks"][(outcome,)] = 0.0
    for metric, labels, value in stored(conn):
        if metric in values:  # else a counter a newer version wrote and this one ignores
            values[metric][tuple(labels.get(n, "") for n in COUNTERS[metric][1])] = value
    for name, (help_text, names) in COUNTERS.items():
        family = CounterMetricFamily(name, help_text, labels=list(names))
        for label_values, value in sorted(values[name].items()):
            family.add_metric(list(label_values), value)
        yield family


def _index(conn: psycopg.Connection[Any]) -> Iterator[Metric]:
    promoted = GaugeMetricFamily(
        "kb_index_last_promotion_timestamp_seconds",
        "When the active index version was promoted (Unix time); its age is freshness.",
        labels=["namespace"],
    )
    active = GaugeMetricFamily(
        "kb_index_active_version", "Id of the active index version.", labels=["namespace"]
    )
    chunks = GaugeMetricFamily(
        "kb_index_active_chunks", "Chunks of the active index version.", labels=["namespace"]
    )
    versions = GaugeMetricFamily(
        "kb_index_versions",
        "Index versions by status (candidate, active, retired, purged): promotion history.",
        labels=["namespace", "status"],
    )
    refused = GaugeMetricFamily(
        "kb_index_refused_candidates",
        "Candidate versions the evaluation gate refused (kept for inspection).",
        labels=["namespace"],
    )
    for namespace, version_id, when, count in conn.execute(
        "SELECT namespace, id, extract(epoch FROM promoted_at), coalesce(chunks, 0) "
        "FROM index_versions WHERE status = 'active'"
    ):
        promoted.add_metric([namespace], float(when or 0.0))
        active.add_metric([namespace], float(version_id))
        chunks.add_metric([namespace], float(count))
    for namespace, status, count in conn.execute(
        "SELECT namespace, status, count(*) FROM index_versions GROUP BY namespace, status"
    ):
        versions.add_metric([namespace, status], float(count))
    for namespace, count in conn.execute(
        "SELECT v.namespace, count(DISTINCT v.id) FROM index_versions v "
        "JOIN eval_runs r ON r.index_version = v.id "
        "WHERE v.promoted_at IS NULL AND r.passed IS FALSE GROUP BY v.namespace"
    ):
        refused.add_metric([namespace], float(count))
    yield from (promoted, active, chunks, versions, refused)


def _evaluation(conn: psycopg.Connection[Any]) -> Iterator[Metric]:
    metric = GaugeMetricFamily(
        "kb_eval_metric",
        "Evaluation metrics of the active index version (its latest run), by search mode.",
        labels=["namespace", "mode", "metric"],
    )
    passed = GaugeMetricFamily(
        "kb_eval_passed",
        "1 when the active version's latest evaluation passed the gate.",
        labels=["namespace"],
    )
    rows = conn.execute(
        "SELECT DISTINCT ON (v.namespace) v.namespace, r.metrics, r.passed "
        "FROM index_versions v JOIN eval_runs r ON r.index_version = v.id "
        "WHERE v.status = 'active' ORDER BY v.namespace, r.started_at DESC, r.id DESC"
    ).fetchall()
    for namespace, figures, ok in rows:
        passed.add_metric([namespace], 1.0 if ok else 0.0)
        for mode, values in sorted((figures or {}).items()):
            if not isinstance(values, dict):
                continue
            for name, value in sorted(values.items()):
                if isinstance(value, int | float) and not isinstance(value, bool):
                    metric.add_metric([namespace, mode, name], float(value))
    yield from (metric, passed)


def _queue(conn: psycopg.Connection[Any]) -> Iterator[Metric]:
    depth = GaugeMetricFamily(
        "kb_bot_queue_depth", "Webhook jobs waiting or running.", labels=["status"]
    )
    oldest = GaugeMetricFamily(
        "kb_bot_queue_oldest_seconds", "Age of the oldest job still queued (0: none)."
    )
    dead = GaugeMetricFamily(
        "kb_bot_dead_letters", "Jobs that failed every attempt (dead letters), all time."
    )
    counts = dict.fromkeys(("queued", "running"), 0.0)
    for status, count in conn.execute(
        "SELECT status, count(*) FROM bot_jobs WHERE status IN ('queued', 'running', 'dead') "
        "GROUP BY status"
    ):
        if status == "dead":
            dead.add_metric([], float(count))
        else:
            counts[status] = float(count)
    if not dead.samples:
        dead.add_metric([], 0.0)
    for status, count in counts.items():
        depth.add_metric([status], count)
    row = conn.execute(
        "SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0) FROM bot_jobs "
        "WHERE status = 'queued'"
    ).fetchone()
    oldest.add_metric([], float(row[0]) if row else 0.0)
    yield from (depth, oldest, dead)


def _effect(conn: psycopg.Connection[Any]) -> Iterator[Metric]:
    tickets = GaugeMetricFamily(
        "kb_effect_tickets",
        f"Tickets of the last {EFFECT_WINDOW_DAYS} days by category and outcome "
        "(accepted, edited, rewritten, not_used, no_reply).",
        labels=["category", "outcome"],
    )
    answered = GaugeMetricFamily(
        "kb_effect_answered_tickets",
        f"Tickets of the last {EFFECT_WINDOW_DAYS} days the bot answered, by category.",
        labels=["category"],
    )
    per_category: dict[str, float] = {}
    for category, outcome, total, bot in conn.execute(
        "SELECT category, outcome, count(*), count(*) FILTER (WHERE bot_answered) "
        "FROM ticket_outcomes WHERE day >= current_date - %s GROUP BY category, outcome",
        (EFFECT_WINDOW_DAYS,),
    ):
        tickets.add_metric([category, outcome], float(total))
        per_category[category] = per_category.get(category, 0.0) + float(bot)
    for category, value in sorted(per_category.items()):
        answered.add_metric([category], value)
    yield from (tickets, answered)
