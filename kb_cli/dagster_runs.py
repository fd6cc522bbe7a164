"""Materialising the pipeline's assets from the CLI, recorded in Dagster's run storage.

Runs started here land in the same PostgreSQL storage as `dagster dev` uses, so they
show up in the Dagster UI. With an external DATABASE_URL and no DAGSTER_PG_URL the run
uses an ephemeral instance (not recorded) and says so.

Dagster and the code location are imported inside the functions, not at the top: the CLI
imports this module for :class:`IngestFailed` on every command, and the bot's processes
(`kb serve`, `kb worker`) must start without Dagster installed (the bot image leaves the
``pipeline`` extra out).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kb_core.db import Database
from kb_core.errors import KbError
from kb_core.settings import Settings

if TYPE_CHECKING:
    import dagster as dg

log = logging.getLogger(__name__)


class IngestFailed(KbError, RuntimeError):
    """The run failed; the message names each failed step and why (no traceback)."""


def dagster_env(settings: Settings, db: Database) -> dict[str, str]:
    """Environment that points Dagster's instance at our storage (existing values win)."""
    env: dict[str, str] = {"DAGSTER_STORAGE_DIR": str(settings.runtime.data_dir / "dagster")}
    url = db.dagster_url()
    if url:
        env["DAGSTER_PG_URL"] = url
    env["DAGSTER_HOME"] = str(settings.runtime.dagster_home)
    return {key: os.environ.get(key, value) for key, value in env.items()}


def instance_for(settings: Settings, db: Database) -> dg.DagsterInstance:
    import dagster as dg

    env = dagster_env(settings, db)
    if "DAGSTER_PG_URL" not in env:
        log.warning("DAGSTER_PG_URL is not set: this run is not recorded in Dagster's storage")
        return dg.DagsterInstance.ephemeral()
    os.environ.update(env)
    Path(env["DAGSTER_STORAGE_DIR"]).mkdir(parents=True, exist_ok=True)
    return dg.DagsterInstance.from_config(env["DAGSTER_HOME"])


def materialize_ingest(
    settings: Settings, db: Database, files_root: Path | None
) -> dict[str, dict[str, Any]]:
    """Run the ingest assets and checks in-process; return each asset's and each check's
    metadata (checks under "check <name>")."""
    import dagster as dg

    from kb_assets.assets import INGEST_ASSETS, INGEST_CHECKS
    from kb_assets.definitions import build_resources

    run_settings = settings.with_overrides(files={"dir": files_root})
    # The CLI already opened (and, when embedded, owns) the database: hand its URL on.
    resources = build_resources(run_settings, database_url=db.url)
    with instance_for(settings, db) as instance:
        result = dg.materialize(
            [*INGEST_ASSETS, *INGEST_CHECKS],
            resources=resources,
            instance=instance,
            run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
            tags={"kb/trigger": "cli"},
            raise_on_error=False,
        )
    if not result.success:
        reasons = []
        for event in result.get_step_failure_events():
            error = event.step_failure_data.error
            message = error.message.strip() if error else "unknown error"
            reasons.append(f"{event.step_key}: {message.splitlines()[-1]}")
        for evaluation in result.get_asset_check_evaluations():
            if not evaluation.passed:
                reasons.append(f"check {evaluation.check_name} failed")
        raise IngestFailed("the ingest run failed: " + "; ".join(reasons or ["see the log above"]))
    summary: dict[str, dict[str, Any]] = {}
    for asset in INGEST_ASSETS:
        for materialization in result.asset_materializations_for_node(asset.op.name):
            key = materialization.asset_key.to_user_string()
            summary[key] = {k: v.value for k, v in materialization.metadata.items()}
    for evaluation in result.get_asset_check_evaluations():
        summary[f"check {evaluation.check_name}"] = {
            "passed": evaluation.passed,
            **{k: v.value for k, v in evaluation.metadata.items()},
        }
    return summary
