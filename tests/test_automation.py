"""The daily automation as the Dagster daemon evaluates it.

Two levels. In-process, against a clock we set: which assets the automation conditions
request at which Moscow time, and when the promoted index's freshness policy warns and
fails. Then the real thing: ``dagster-daemon run`` with the production dagster.yaml on
the embedded PostgreSQL and the code location served over gRPC as in docker compose;
nobody starts a sensor, and the daemon itself launches the refresh run that promotes an
index version, after which the freshness daemon reports the index fresh.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from dagster._core.definitions.freshness import FreshnessState
from dagster._core.test_utils import freeze_time

from kb_assets.assets import SOURCE_ASSETS
from kb_assets.definitions import build_definitions, build_resources
from kb_core.db import Database
from kb_core.settings import PROJECT_ROOT, Settings
from kb_fakes.server import free_port
from tests.conftest import all_sources_settings, process_env

# Every source configured: unconfigured ones are left out of the definitions.
defs = build_definitions(all_sources_settings())
# The people directory (a deny-list for scrubbing) refreshes with the sources.
SOURCES = {
    "person_directory",
    "raw_files",
    "raw_confluence_pages",
    "raw_jira_issues",
    "raw_pyrus_tickets",
    "kb_corrections",
    "source_event_updates",
}
REFRESH_CHAIN = {
    "cleaned_markdown",
    "pii_free_chunks",
    "chunk_embeddings",
    "rag_eval",
    "promoted_index",
}
CHECKS = {"no_personal_data_in_chunks", "valid_vectors", "candidate_passes_eval"}
EFFECT_DAILY = {"ticket_categories", "category_stats"}
PROMOTED = dg.AssetKey("promoted_index")


def _msk(text: str) -> datetime:
    """A Moscow wall-clock time (UTC+3, no DST) as an aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC) - timedelta(hours=3)


class Clock:
    """Successive automation ticks, as the daemon's sensor would run them."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance = instance
        self.cursor = None

    def tick(self, at: datetime) -> set[str]:
        """Names of the assets requested at ``at``; their partitions land in ``partitions``."""
        with freeze_time(at):
            result = dg.evaluate_automation_conditions(
                defs=defs, instance=self.instance, evaluation_time=at, cursor=self.cursor
            )
        self.cursor = result.cursor
        self.partitions = {
            key.to_user_string(): result.get_requested_partitions(key)
            for key in defs.resolve_asset_graph().get_all_asset_keys()
            if result.get_num_requested(key)
        }
        self.checks = {
            r.key.name
            for r in result.results
            if isinstance(r.key, dg.AssetCheckKey) and not r.true_subset.is_empty
        }
        return set(self.partitions)

    def materialize(self, names: set[str], at: datetime, partition: str | None = None) -> None:
        """Record materialisations at a given time (the run itself is not the point here)."""
        with freeze_time(at):
            for name in sorted(names):
                event = dg.AssetMaterialization(name, partition=partition)
                self.instance.report_runless_asset_event(event)


def test_sources_refresh_at_3_moscow_and_the_index_chain_follows_in_the_same_tick():
    with dg.instance_for_test() as instance:
        clock = Clock(instance)
        assert clock.tick(_msk("2026-11-19T02:59:00")) == set()
        first = clock.tick(_msk("2026-11-19T03:00:30"))
        # Nothing was ever materialised: the sources and everything that depends only on
        # them are requested together (the effect assets wait for their own cron).
        assert first == SOURCES | REFRESH_CHAIN
        # The blocking checks run in the same run: promotion refuses an unchecked candidate.
        assert clock.checks == CHECKS
        clock.materialize(first, _msk("2026-11-19T03:05:00"))
        assert clock.tick(_msk("2026-11-19T03:06:00")) == set()
        # 04:00: yesterday's tickets are categorised (a daily partition) and its
        # statistics follow in the same tick.
        assert clock.tick(_msk("2026-11-19T04:00:30")) == EFFECT_DAILY
        assert all(clock.partitions[name] == {"2026-11-18"} for name in EFFECT_DAILY)
        clock.materialize(EFFECT_DAILY, _msk("2026-11-19T04:02:00"), partition="2026-11-18")
        assert clock.tick(_msk("2026-11-19T12:00:00")) == set()
        # Next night: the sources again, and the chain because its parents will update.
        assert clock.tick(_msk("2026-11-20T03:00:30")) == SOURCES | REFRESH_CHAIN


def test_a_source_updated_out_of_schedule_refreshes_only_what_depends_on_it():
    with dg.instance_for_test() as instance:
        clock = Clock(instance)
        clock.tick(_msk("2026-11-19T02:59:00"))
        clock.materialize(clock.tick(_msk("2026-11-19T03:00:30")), _msk("2026-11-19T03:05:00"))
        clock.tick(_msk("2026-11-19T03:06:00"))
        # The corrections sensor's run refreshed kb_corrections at 03:30.
        clock.materialize({"kb_corrections"}, _msk("2026-11-19T03:30:00"))
        assert clock.tick(_msk("2026-11-19T03:31:00")) == REFRESH_CHAIN
        assert clock.checks == CHECKS


def test_index_maintenance_and_the_weekly_report_follow_their_own_crons():
    with dg.instance_for_test() as instance:
        clock = Clock(instance)
        clock.tick(_msk("2026-11-22T04:59:00"))
        assert "index_maintenance" in clock.tick(_msk("2026-11-22T05:00:30"))  # Sunday
        # Monday: Sunday's statistics are done at 04:00, the weekly report follows at 07:00
        # (not a day late, waiting for statistics newer than the tick).
        clock.materialize({"category_stats"}, _msk("2026-11-23T04:02:00"), partition="2026-11-22")
        clock.tick(_msk("2026-11-23T06:59:00"))
        assert "weekly_effect_report" in clock.tick(_msk("2026-11-23T07:00:30"))
        clock.materialize({"weekly_effect_report"}, _msk("2026-11-23T07:01:00"))
        clock.materialize({"category_stats"}, _msk("2026-11-24T04:02:00"), partition="2026-11-23")
        assert "weekly_effect_report" not in clock.tick(_msk("2026-11-24T07:00:30"))


def _freshness(instance: dg.DagsterInstance, at: datetime) -> FreshnessState:
    """Run one pass of Dagster's freshness daemon at ``at``; the state it recorded."""
    from dagster._core.remote_origin import InProcessCodeLocationOrigin
    from dagster._core.test_utils import InProcessTestWorkspaceLoadTarget
    from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._daemon.freshness import FreshnessDaemon

    origin = InProcessCodeLocationOrigin(
        LoadableTargetOrigin(
            module_name="kb_assets.definitions", working_directory=str(PROJECT_ROOT)
        )
    )
    with (
        freeze_time(at),
        WorkspaceProcessContext(instance, InProcessTestWorkspaceLoadTarget(origin)) as context,
    ):
        asyncio.run(FreshnessDaemon()._evaluate_assets(context))
    record = instance.get_freshness_state_records([PROMOTED])[PROMOTED]
    return record.freshness_state


def test_promoted_index_warns_after_24_hours_and_fails_after_26():
    with dg.instance_for_test() as instance:
        promoted_at = _msk("2026-11-19T03:20:00")
        with freeze_time(promoted_at):
            instance.report_runless_asset_event(dg.AssetMaterialization("promoted_index"))
        assert _freshness(instance, promoted_at + timedelta(hours=1)) == FreshnessState.PASS
        assert _freshness(instance, promoted_at + timedelta(hours=25)) == FreshnessState.WARN
        assert _freshness(instance, promoted_at + timedelta(hours=26, minutes=5)) == (
            FreshnessState.FAIL
        )


# --- the real daemon ---------------------------------------------------------------------


class Stack:
    """The code server and the daemon as processes, as in docker compose; stopped at exit."""

    def __init__(self, home: Path, env: dict[str, str]) -> None:
        self.home, self.env, self.processes = home, env, {}

    def start(self, name: str, *argv: str) -> None:
        log = (self.home / f"{name}.log").open("w")
        program = str(Path(sys.executable).with_name(argv[0]))
        self.processes[name] = subprocess.Popen(
            [program, *argv[1:]],
            env=self.env,
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def logs(self) -> str:
        return "\n".join(
            f"--- {name}\n" + (self.home / f"{name}.log").read_text()[-4000:]
            for name in self.processes
        )

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


@pytest.fixture
def stack(
    kb_settings: Settings,
    tmp_path: Path,
    dagster_pg_url: str,
    database: Database,
    sample_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Stack]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT_ROOT / "deploy" / "dagster" / "dagster.yaml", home)
    port = free_port()
    (home / "workspace.yaml").write_text(
        f"load_from:\n  - grpc_server: {{host: 127.0.0.1, port: {port}, location_name: kb}}\n"
    )
    dagster = {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_URL": dagster_pg_url,
        "DAGSTER_STORAGE_DIR": str(tmp_path / "dagster_storage"),
    }
    # Dagster's own instance (here and in the test) is configured only through these.
    for name, value in dagster.items():
        monkeypatch.setenv(name, value)
    # What the compose `migrate` service does before anything starts: create the storage.
    with dg.DagsterInstance.from_config(str(home)):
        pass
    settings = kb_settings.with_env(
        {"KB_FILES_DIR": str(sample_dir), "KB_AUTOMATION_INTERVAL_S": "5"}
    )
    running = Stack(home, process_env(settings, **dagster, FRESHNESS_DAEMON_INTERVAL_SECONDS="2"))
    running.start(
        "code", "dagster", "code-server", "start", "--module-name", "kb_assets.definitions",
        "--location-name", "kb", "--host", "127.0.0.1", "--port", str(port),
    )  # fmt: skip
    running.start("daemon", "dagster-daemon", "run", "--workspace", str(home / "workspace.yaml"))
    try:
        yield running
    finally:
        running.stop()


def _ticks(dagster_url: str, sensor: str) -> list[str]:
    """Statuses of a sensor's finished ticks, read from Dagster's storage."""
    url = dagster_url.replace("postgresql+psycopg2", "postgresql")
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT status FROM job_ticks WHERE tick_body LIKE %s AND status <> 'STARTED'"
            " ORDER BY id",
            (f'%"job_name": "{sensor}"%',),  # the serialised TickData's field name
        ).fetchall()
    return [row[0] for row in rows]


def _wait(what: str, stack: Stack, condition, timeout: float = 240.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        for name, process in stack.processes.items():
            assert process.poll() is None, f"{name} exited\n{stack.logs()}"
        time.sleep(1)
    pytest.fail(f"timed out waiting for {what}\n{stack.logs()}")


def test_the_daemon_starts_the_refresh_and_reports_the_index_fresh(
    stack: Stack, kb_settings: Settings, dagster_pg_url: str, database: Database, sample_dir: Path
):
    """Production dagster.yaml, code over gRPC, nothing started by hand."""
    from dagster._core.storage.dagster_run import RunsFilter

    # Both sensors are RUNNING by default: their first ticks happen on their own.
    _wait("the first automation tick", stack, lambda: _ticks(dagster_pg_url, "kb_automation"))
    # No corrections form configured here: that sensor is left out with its source.
    first = _wait("an events tick", stack, lambda: _ticks(dagster_pg_url, "source_events_sensor"))
    assert first[0] == "SKIPPED"  # no source events pending

    with dg.DagsterInstance.get() as instance:
        records = instance.get_freshness_state_records([PROMOTED])
        assert PROMOTED not in records or records[PROMOTED].freshness_state != FreshnessState.PASS
        # Tonight's sources, materialised here; the daemon must do the rest.
        dg.materialize(
            SOURCE_ASSETS,
            resources=build_resources(kb_settings.with_overrides(files={"dir": sample_dir})),
            instance=instance,
        )
        trigger = RunsFilter(tags={"kb/trigger": "automation"})

        def finished() -> list[dg.DagsterRun]:
            runs = instance.get_runs(filters=trigger)
            return [run for run in runs if run.is_finished]

        (run,) = _wait("the automation run", stack, finished)
        assert run.is_success, stack.logs()
        selected = {key.to_user_string() for key in run.asset_selection or ()}
        assert selected == REFRESH_CHAIN
        assert instance.get_latest_materialization_event(PROMOTED) is not None

        def fresh() -> bool:
            records = instance.get_freshness_state_records([PROMOTED])
            return PROMOTED in records and records[PROMOTED].freshness_state == FreshnessState.PASS

        _wait("the freshness daemon", stack, fresh, timeout=60)
    with database.connection() as conn:
        active = conn.execute("SELECT count(*) FROM index_versions WHERE status = 'active'")
        assert active.fetchone()[0] == 1
