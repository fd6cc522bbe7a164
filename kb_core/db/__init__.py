"""PostgreSQL access: embedded server lifecycle, connections, migrations."""

from kb_core.db.connection import (
    Database,
    DatabaseError,
    connect,
    open_database,
    with_dbname,
)
from kb_core.db.migrations import MigrationError, apply_migrations

__all__ = [
    "Database",
    "DatabaseError",
    "MigrationError",
    "apply_migrations",
    "connect",
    "open_database",
    "with_dbname",
]
