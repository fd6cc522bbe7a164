"""Counters of short-lived processes, kept in the database.

A pipeline run, a sensor tick or the daemon's failure hook lives seconds to minutes and
nothing scrapes it, so a counter in its memory never reaches Prometheus (the invalid
vector and failed notification alerts could not fire). These counters are added to a
table instead, in the writer's own transaction where it has one, and the bot API serves
them (:mod:`kb_core.ops.collector`). A pushgateway would be one more service to run and
secure, and it forgets on restart; the database is already there, backed up, and holds
the figures next to what they describe.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import psycopg

log = logging.getLogger(__name__)

#: Persisted counters: name as exposed (without ``_total``) → (help, label names).
COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "kb_pipeline_vectors": ("Vectors computed by the pipeline, by model.", ("model",)),
    "kb_pipeline_invalid_vectors": (
        "Vectors the pipeline got back zero or not finite and did not store, by model.",
        ("model",),
    ),
    "kb_pipeline_notifications": (
        "Messenger notifications of the pipeline, sensors and daemon, by kind and outcome "
        "(sent, failed).",
        ("kind", "outcome"),
    ),
    "kb_pipeline_pii_checks": (
        "Blocking PII checks of the chunks, by outcome (passed, failed).",
        ("outcome",),
    ),
    "kb_pipeline_pii_findings": (
        "Personal data the blocking check found in chunks, by entity type.",
        ("entity",),
    ),
    "kb_pipeline_synced_documents": (
        "Documents written by source syncs, by source and change (new, changed, "
        "unchanged, deleted).",
        ("source", "change"),
    ),
}


def bump(
    conn: psycopg.Connection[Any], metric: str, labels: dict[str, str], by: float = 1.0
) -> None:
    """Add ``by`` to a persisted counter (created at zero)."""
    help_and_labels = COUNTERS.get(metric)
    if help_and_labels is None:
        raise ValueError(f"unknown persisted counter {metric!r}")
    if sorted(labels) != sorted(help_and_labels[1]):
        raise ValueError(f"{metric} takes labels {help_and_labels[1]}, got {sorted(labels)}")
    if by < 0:
        raise ValueError("a counter only grows")
    # Adding zero still creates the row: Prometheus's increase() needs a series to exist
    # before its first rise, or the first invalid vector would never alert.
    conn.execute(
        "INSERT INTO ops_counters (metric, labels, value) VALUES (%s, %s, %s) "
        "ON CONFLICT (metric, labels) DO UPDATE "
        "SET value = ops_counters.value + EXCLUDED.value, updated_at = now()",
        (metric, json.dumps(labels, sort_keys=True), by),
    )


Connect = Callable[[], AbstractContextManager[psycopg.Connection[Any]]]


def bump_safely(connect: Connect, metric: str, labels: dict[str, str], by: float = 1.0) -> None:
    """:func:`bump` in its own connection for callers that have none; a database error is
    logged, never raised: counting must not fail the notification or run it counts."""
    try:
        with connect() as conn:
            bump(conn, metric, labels, by)
    except Exception as exc:
        log.warning("counter %s not stored: %s", metric, type(exc).__name__)


def stored(conn: psycopg.Connection[Any]) -> Iterator[tuple[str, dict[str, str], float]]:
    """Every persisted counter as (metric, labels, value)."""
    for metric, labels, value in conn.execute(
        "SELECT metric, labels, value FROM ops_counters ORDER BY metric, labels::text"
    ):
        yield str(metric), {str(k): str(v) for k, v in labels.items()}, float(value)
