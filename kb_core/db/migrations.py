"""A small, strict migration runner for the numbered files in ``sql/``.

Files are named ``NNNN_description.sql`` and applied once, in numeric order, each in its
own transaction together with its row in ``schema_migrations``. A checksum of every
applied file is kept: editing a migration after it ran is an error, not a silent drift.
An advisory lock makes concurrent starters (bot, worker, pipeline) wait for each other.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from kb_core.errors import KbError

log = logging.getLogger(__name__)

_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")
# Arbitrary constant shared by every process that migrates this database.
_ADVISORY_LOCK_KEY = 727_100_001


class MigrationError(KbError, RuntimeError):
    """The migrations folder or the recorded history is inconsistent."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def discover(directory: Path) -> list[Migration]:
    """The migrations in ``directory``, ordered, with names and numbering validated."""
    if not directory.is_dir():
        raise MigrationError(f"migrations folder not found: {directory}")
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if match is None:
            raise MigrationError(f"bad migration file name {path.name!r}: use NNNN_name.sql")
        version = int(match["version"])
        if version in found:
            raise MigrationError(f"two migrations numbered {version:04d}")
        found[version] = Migration(version, match["name"], path, path.read_text("utf-8"))
    return [found[v] for v in sorted(found)]


def apply_migrations(url: str, directory: Path) -> list[Migration]:
    """Apply pending migrations; return the ones applied by this call."""
    migrations = discover(directory)
    applied_now: list[Migration] = []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_ADVISORY_LOCK_KEY,))
        try:
            conn.execute(
                """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version    integer PRIMARY KEY,
                    name       text NOT NULL,
                    checksum   text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """
            )
            recorded = {
                row[0]: (row[1], row[2])
                for row in conn.execute("SELECT version, name, checksum FROM schema_migrations")
            }
            known = {m.version for m in migrations}
            unknown = sorted(set(recorded) - known)
            if unknown:
                raise MigrationError(
                    f"database has migrations {unknown} that are not in {directory}: "
                    "is this an older checkout than the database?"
                )
            for migration in migrations:
                if migration.version in recorded:
                    if recorded[migration.version][1] != migration.checksum:
                        raise MigrationError(
                            f"migration {migration.path.name} changed after it was applied; "
                            "add a new migration instead of editing an applied one"
                        )
                    continue
                with conn.transaction():
                    conn.execute(migration.sql.encode("utf-8"))
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) "
                        "VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
                log.info("applied migration %s", migration.path.name)
                applied_now.append(migration)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_ADVISORY_LOCK_KEY,))
    return applied_now


def applied_versions(conn: psycopg.Connection[Any]) -> list[int]:
    """Versions recorded in the database, ascending."""
    return [int(r[0]) for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
