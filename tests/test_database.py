"""Resolving, checking and starting the database."""

import subprocess
from pathlib import Path

import pytest

from kb_core.db import DatabaseError, open_database
from kb_core.db import embedded as embedded_pg
from kb_core.db.connection import check_pgvector, describe, parse_version
from kb_core.settings import Settings
from tests.conftest import BASE, process_env, run_kb


def test_external_database_url_is_used_and_checked(db_url: str, tmp_path: Path):
    settings = Settings.defaults(db={"url": db_url}, runtime={"data_dir": tmp_path})
    database = open_database(settings)
    assert not database.embedded
    assert database.dagster_url() is None
    assert parse_version(database.pgvector_version) >= (0, 5, 0)
    assert not (tmp_path / "pgdata").exists()  # no embedded server was started


def test_unreachable_database_gives_a_clear_error_without_password(tmp_path: Path):
    url = f"postgresql://kb:hunter2@/kb?host={tmp_path}&port=1"
    settings = Settings.defaults(db={"url": url})
    with pytest.raises(DatabaseError) as info:
        open_database(settings)
    assert "cannot connect to PostgreSQL" in str(info.value)
    assert "hunter2" not in describe(url)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0.8.6", (0, 8, 6)), ("0.5", (0, 5, 0)), ("0.5.0-dev", (0, 5, 0)), ("1.0.0", (1, 0, 0))],
)
def test_parse_version(text: str, expected: tuple[int, int, int]):
    assert parse_version(text) == expected


class _OneRowConnection:
    """Stands in for a server we cannot run here: one with an old or no pgvector."""

    def __init__(self, row):
        self._row = row

    def execute(self, *_args, **_kwargs):
        return self

    def fetchone(self):
        return self._row


def test_too_old_pgvector_is_refused():
    with pytest.raises(DatabaseError, match=r"pgvector 0\.4\.4 is too old"):
        check_pgvector(_OneRowConnection(("0.4.4", "0.4.4")))


def test_missing_pgvector_is_refused():
    with pytest.raises(DatabaseError, match="not installed"):
        check_pgvector(_OneRowConnection(None))


def test_available_but_not_created_extension_counts(empty_db_url: str):
    from kb_core.db import connect

    with connect(empty_db_url, vector=False) as conn:
        assert parse_version(check_pgvector(conn)) >= (0, 5, 0)


def _kb(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_kb(*args, env=env)


@pytest.mark.integration  # starts a process
def test_embedded_server_started_detached_is_reused_and_left_running(tmp_path: Path):
    data_dir = tmp_path / "kbdata"
    env = process_env(BASE.with_env({"KB_DATA_DIR": str(data_dir)}))
    try:
        started = _kb("db", "start", env=env)
        assert started.returncode == 0, started.stderr
        assert embedded_pg.running_uri(data_dir) is not None

        migrated = _kb("db", "migrate", env=env)  # attaches to the running server
        assert migrated.returncode == 0, migrated.stderr
        assert "migrations applied: 0001" in migrated.stdout
        assert embedded_pg.running_uri(data_dir) is not None  # still running after it exits

        stopped = _kb("db", "stop", env=env)
        assert stopped.returncode == 0 and "stopped" in stopped.stdout
        assert embedded_pg.running_uri(data_dir) is None
    finally:
        embedded_pg.stop(data_dir)


@pytest.mark.integration  # starts a process
def test_embedded_server_started_by_a_command_stops_with_it(tmp_path: Path):
    data_dir = tmp_path / "kbdata"
    env = process_env(BASE.with_env({"KB_DATA_DIR": str(data_dir)}))
    try:
        migrated = _kb("db", "migrate", env=env)
        assert migrated.returncode == 0, migrated.stderr
        assert (data_dir / "pgdata" / "PG_VERSION").exists()
        assert embedded_pg.running_uri(data_dir) is None
    finally:
        embedded_pg.stop(data_dir)
