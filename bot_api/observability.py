"""/metrics of the bot API: this process's own metrics plus the database's figures, and
every request counted by route.

The database's figures (the pipeline's counters, freshness, evaluation, queue, effect)
are served here because the bot API always runs and is already scraped; see
kb_core.ops.collector and docs/operations-monitoring.md.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

from bot_api.state import AppState
from kb_core.ops.collector import DatabaseCollector
from kb_core.ops.metrics import HTTP_REQUESTS, HTTP_SECONDS


def route_template(request: Request) -> str:
    """The matched route's template (``/api/search``), never the raw path: paths with ids
    or typos must not create a series each. Read after the call: the router records the
    route it chose in the scope. Unmatched paths count as ``other``."""
    route = request.scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(path) if path else "other"


def install(app: FastAPI, state: Callable[[], AppState]) -> None:
    """Count requests by route and serve ``/metrics``; ``state`` gives the app's state
    (its pool) once the lifespan has started."""

    @app.middleware("http")
    async def count_requests(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        status = "5xx"
        try:
            response = await call_next(request)
            status = f"{response.status_code // 100}xx"
            return response
        finally:
            route = route_template(request)
            if route != "/metrics":
                HTTP_REQUESTS.labels(route, request.method, status).inc()
                HTTP_SECONDS.labels(route).observe(time.perf_counter() - started)

    database = CollectorRegistry(auto_describe=False)
    database.register(DatabaseCollector(lambda: state().pool.connection(timeout=2)))

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    def prometheus_metrics() -> Response:
        """Prometheus exposition: webhooks, jobs, retrieval, LLM errors, embeddings,
        requests by route, and the database's figures (pipeline, index, queue, effect)."""
        body = generate_latest(REGISTRY) + generate_latest(database)
        return Response(body, media_type=CONTENT_TYPE_LATEST)
