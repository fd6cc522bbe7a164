"""The bot's job worker threads inside a `kb` process (`kb serve`, `kb worker`, `kb demo`)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from kb_cli.output import err_console
from kb_core.db import Database
from kb_core.settings import Settings

if TYPE_CHECKING:
    from kb_core.bot.worker import WorkerHealth


def start_workers(settings: Settings, db: Database, stop: threading.Event) -> WorkerHealth:
    """Start the worker threads (KB_BOT_WORKER_THREADS) sharing one bot context; the
    returned health knows the threads, their heartbeat and the jobs they hold."""
    from kb_core.bot.context import bot_context
    from kb_core.bot.worker import WorkerConfig, WorkerHealth, run_worker, shared_context

    config = WorkerConfig(
        lease_s=settings.bot.job_lease_s,
        poll_s=settings.bot.poll_s,
        max_attempts=settings.bot.max_attempts,
        backoff_s=settings.bot.retry_backoff_s,
    )
    health = WorkerHealth()
    context = shared_context(lambda: bot_context(settings))
    for n in range(settings.bot.worker_threads):
        thread = threading.Thread(
            target=run_worker,
            args=(db.connection, context, stop, config),
            kwargs={"health": health},
            name=f"kb-bot-worker-{n}",
            daemon=True,
        )
        thread.start()
        health.threads.append(thread)
    return health


def stop_workers(db: Database, health: WorkerHealth | None, stop: threading.Event) -> None:
    """Graceful stop: no new jobs, a few seconds for the current ones, then the leases
    of those still running are handed back so another worker answers at once."""
    from kb_core.bot.worker import release

    stop.set()
    if health is None:
        return
    health.join(timeout=10)
    released = release(db.connection, health)
    if released:
        err_console.print(f"released {released} job(s) still being answered")


def stop_on_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT ask for a graceful stop. A Python handler matters under
    uvicorn too: it re-raises the signal it caught after shutting down, and with the
    default SIGTERM action that killed the process before any clean-up (the embedded
    PostgreSQL it started was left running)."""
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
