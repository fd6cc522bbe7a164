"""Latency of the calls the product makes to other services, and of its own HTTP routes.

One histogram per concern with a ``service`` label keeps dashboards and alerts generic:
a new dependency is a new label value, not a new metric name.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import Counter, Histogram

EXTERNAL_CALL_SECONDS = Histogram(
    "kb_external_call_seconds",
    "Duration of one call to another service (retries included), by service "
    "(embedding, llm, reranker, pyrus, confluence) and outcome (ok, error).",
    ["service", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)

HTTP_REQUESTS = Counter(
    "kb_http_requests",  # exposed as kb_http_requests_total
    "Requests served by the bot API (the console, its JSON API, the webhook), by route "
    "template, method and status class.",
    ["route", "method", "status"],
)
HTTP_SECONDS = Histogram(
    "kb_http_request_seconds",
    "Time to serve one request of the bot API, by route template.",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


@contextmanager
def timed_call(service: str) -> Iterator[None]:
    """Observe the block's duration as one call to ``service``; an exception is an error."""
    started = time.perf_counter()
    outcome = "error"
    try:
        yield
        outcome = "ok"
    finally:
        EXTERNAL_CALL_SECONDS.labels(service, outcome).observe(time.perf_counter() - started)
