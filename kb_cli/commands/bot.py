"""`kb serve` and `kb worker`: the bot's HTTP API and its job worker."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Annotated

import typer

from kb_cli.context import settings_of
from kb_cli.output import err_console
from kb_cli.workers import start_workers, stop_on_signals, stop_workers
from kb_core.db import open_database


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    worker: Annotated[bool, typer.Option(help="Also run the job worker in-process.")] = True,
) -> None:
    """The bot: the HTTP API (webhook, search, health, metrics) and the job worker."""
    import uvicorn

    from bot_api.app import create_app

    settings = settings_of(ctx)
    db = open_database(settings)
    stop = threading.Event()
    health = start_workers(settings, db, stop) if worker else None
    stop_on_signals(stop)
    try:
        uvicorn.run(
            create_app(settings, worker_health=health), host=host, port=port, log_level="info"
        )
    finally:
        stop_workers(db, health, stop)
        db.close()


def worker_command(
    ctx: typer.Context,
    heartbeat_file: Annotated[
        Path | None,
        typer.Option(
            help="Touched every few seconds while the worker threads live and poll, for a "
            "container health check (the worker serves no HTTP)."
        ),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            help="Serve the worker's Prometheus metrics (jobs, answers, LLM errors) on this "
            "port; the API's /metrics only counts what its own process did."
        ),
    ] = None,
) -> None:
    """Only the job worker (scale it out separately from the API). Runs until SIGTERM or
    SIGINT (exit 0); database outages are waited out, never a reason to exit."""
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port)
    settings = settings_of(ctx)
    db = open_database(settings)
    stop = threading.Event()
    stop_on_signals(stop)
    health = start_workers(settings, db, stop)
    try:
        while not stop.is_set() and health.alive():
            if heartbeat_file is not None and health.problem(settings.bot.worker_stale_s) is None:
                heartbeat_file.touch()
            stop.wait(5)
    finally:
        died = not stop.is_set()
        stop_workers(db, health, stop)
        db.close()
    if died:  # a worker thread ended by itself: a bug, not a state to run on in
        err_console.print("error: a worker thread stopped unexpectedly")
        raise typer.Exit(1)
