"""The code location loads, and runs are recorded in PostgreSQL through dagster.yaml."""

from pathlib import Path

import dagster as dg
import pytest
from dagster._utils.test.definitions import LazyDefinitions

from kb_assets import definitions
from kb_assets.definitions import build_definitions
from kb_core.settings import PROJECT_ROOT, Settings
from tests.conftest import BASE, all_sources_settings, run_ingest

# Every source configured; kb_assets.definitions.defs holds only the configured ones.
defs = build_definitions(all_sources_settings())


def test_definitions_load_with_the_pipeline_assets():
    # The code location is lazy: Dagster finds the decorated loader, nothing is built at
    # import (so importing kb_assets reads no environment).
    assert isinstance(definitions.defs, LazyDefinitions)
    dg.Definitions.validate_loadable(build_definitions(BASE))
    dg.Definitions.validate_loadable(defs)
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert {
        "raw_files",
        "raw_confluence_pages",
        "raw_jira_issues",
        "raw_pyrus_tickets",
        "kb_corrections",
        "cleaned_markdown",
        "pii_free_chunks",
        "chunk_embeddings",
        "promoted_index",
        "index_maintenance",
    } <= keys


def test_unconfigured_sources_are_left_out_and_the_cron_follows_the_time_zone():
    settings = BASE.with_overrides(
        files={"dir": PROJECT_ROOT}, schedule={"stats_timezone": "Asia/Yekaterinburg"}
    )
    graph = build_definitions(settings).resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert {"raw_files", "source_event_updates", "cleaned_markdown"} <= keys
    assert not {"raw_confluence_pages", "raw_jira_issues", "raw_pyrus_tickets"} & keys
    assert not {"kb_corrections", "person_directory"} & keys
    cleaned = graph.get(dg.AssetKey("cleaned_markdown"))
    assert cleaned.parent_keys == {dg.AssetKey("raw_files"), dg.AssetKey("source_event_updates")}
    condition = str(graph.get(dg.AssetKey("raw_files")).automation_condition)
    assert "0 3 * * *" in condition and "Asia/Yekaterinburg" in condition
    ticket_days = graph.get(dg.AssetKey("ticket_categories")).partitions_def
    assert isinstance(ticket_days, dg.DailyPartitionsDefinition)
    assert ticket_days.timezone == "Asia/Yekaterinburg"


def test_repo_dagster_yaml_records_runs_in_postgres(
    dagster_pg_url: str,
    kb_settings: Settings,
    sample_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    # Dagster's instance reads its storage from dagster.yaml's env references only.
    monkeypatch.setenv("DAGSTER_PG_URL", dagster_pg_url)
    monkeypatch.setenv("DAGSTER_STORAGE_DIR", str(tmp_path / "dagster"))
    with dg.DagsterInstance.from_config(str(PROJECT_ROOT)) as instance:
        metadata = run_ingest(kb_settings, sample_dir, instance=instance)
        runs = instance.get_runs()
        assert len(runs) == 1 and runs[0].is_success
        assert metadata["chunk_embeddings"]["embedded"] > 0
        event = instance.get_latest_materialization_event(dg.AssetKey("chunk_embeddings"))
        assert event is not None
        assert event.asset_materialization.metadata["embedded"].value > 0
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"


def test_sources_refresh_daily_and_the_rest_follows():
    import dagster as dg

    graph = defs.resolve_asset_graph()
    for name in (
        "raw_files",
        "raw_confluence_pages",
        "raw_jira_issues",
        "raw_pyrus_tickets",
        "kb_corrections",
    ):
        condition = graph.get(dg.AssetKey(name)).automation_condition
        assert condition is not None and "0 3 * * *" in str(condition), name
    for name in ("cleaned_markdown", "pii_free_chunks", "chunk_embeddings", "promoted_index"):
        assert graph.get(dg.AssetKey(name)).automation_condition is not None, name
    maintenance = graph.get(dg.AssetKey("index_maintenance")).automation_condition
    assert maintenance is not None and "0 5 * * 0" in str(maintenance)
    promoted = graph.get(dg.AssetKey("promoted_index"))
    assert promoted.freshness_policy is not None
    automation_sensor = next(s for s in defs.sensors or () if s.name == "kb_automation")
    assert automation_sensor.name == "kb_automation"
    assert automation_sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_pii_check_is_blocking():
    checks = {c.name: c for c in defs.resolve_asset_graph().asset_check_keys}
    assert set(checks) == {"no_personal_data_in_chunks", "valid_vectors", "candidate_passes_eval"}
    for name in ("no_personal_data_in_chunks", "candidate_passes_eval"):
        spec = next(iter(defs.get_asset_checks_def(checks[name]).check_specs))
        assert spec.blocking, name
    promoted = defs.resolve_asset_graph().get(dg.AssetKey("promoted_index"))
    assert dg.AssetKey("rag_eval") in promoted.parent_keys
