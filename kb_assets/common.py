"""Helpers shared by the asset modules: progress logs, sync metadata, the preparer."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import dagster as dg

from kb_assets.resources import DatabaseResource
from kb_core.index.documents import Preparer, PrepareReport
from kb_core.models import SyncCounts
from kb_core.pii.configured import ParallelScrubber, config_from_settings, config_signature
from kb_core.pii.directory import load_directory


class ProgressLog:
    """Logs stage progress at most every few seconds, and once at the end."""

    INTERVAL_S = 5.0

    def __init__(self, context: dg.AssetExecutionContext, what: str) -> None:
        self._context = context
        self._what = what
        self._started = self._last = time.perf_counter()

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if done == total or now - self._last >= self.INTERVAL_S:
            rate = done / max(now - self._started, 1e-9)
            self._context.log.info(f"{self._what}: {done}/{total} ({rate:.1f}/s)")
            self._last = now


def counts_metadata(
    counts: SyncCounts, report: PrepareReport | None = None, **extra: Any
) -> dict[str, Any]:
    prepared: dict[str, Any] = {}
    if report is not None:
        prepared = {
            "prepared": report.prepared,
            "pii_placeholders_inserted": report.placeholders,
            "not_converted": dg.MetadataValue.json([i for i, _ in report.failures[:50]]),
        }
    return {
        "enabled": True,
        "new": counts.new,
        "changed": counts.changed,
        "unchanged": counts.unchanged,
        "deleted": counts.deleted,
        **prepared,
        **extra,
    }


@contextmanager
def preparer(context: dg.AssetExecutionContext, database: DatabaseResource) -> Iterator[Preparer]:
    """Converts and scrubs what a source delivers before it is stored: the raw text never
    reaches the database (kb_core.index.documents)."""
    settings = database.settings
    with database.connection() as conn:
        directory = load_directory(conn)
    pii_config = replace(config_from_settings(settings), directory=directory)
    if not settings.pii.scrub:
        context.log.warning("KB_PII_SCRUB is off: documents are stored NOT scrubbed")
        yield Preparer()
        return
    with ParallelScrubber(pii_config, settings.pii.workers) as scrubber:
        yield Preparer(scrubber.scrub_many, config_signature(pii_config))


def log_failures(context: dg.AssetExecutionContext, report: PrepareReport) -> None:
    for external_id, error in report.failures:
        context.log.error(f"document {external_id} not converted: {error}")
