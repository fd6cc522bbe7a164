"""The code location loaded by ``dagster dev`` / the gRPC server (see workspace.yaml)."""

from __future__ import annotations

import dagster as dg

from kb_assets.assets import INGEST_ASSETS, INGEST_CHECKS, MAINTENANCE_ASSETS
from kb_assets.effect import EFFECT_ASSETS
from kb_assets.resources import (
    ConfluenceResource,
    DatabaseResource,
    EmbedderResource,
    FilesSourceResource,
    JiraResource,
    NotificationsResource,
    PyrusResource,
)
from kb_assets.sensors import JOBS, SENSORS
from kb_core.settings import Settings, get_settings


def build_resources(
    settings: Settings, *, database_url: str | None = None
) -> dict[str, dg.ConfigurableResource]:
    """The pipeline's resources; ``database_url`` overrides the settings' database (a
    caller that already opened the database, e.g. the CLI owning the embedded server)."""
    if database_url is None and settings.database_url is not None:
        database_url = settings.database_url.get_secret_value()
    return {
        "database": DatabaseResource(database_url=database_url),
        "embedder": EmbedderResource(
            provider=settings.embedder,
            threads=settings.embed_threads,
            batch_size=settings.embed_batch_size,
        ),
        "files_source": FilesSourceResource(
            root=str(settings.files_dir) if settings.files_dir else None
        ),
        "confluence": ConfluenceResource(),
        "pyrus": PyrusResource(),
        "jira": JiraResource(),
        "notifications": NotificationsResource(),
    }


# The implicit default automation sensor starts STOPPED; this one runs from the start so
# the daily on_cron sources and the eager downstream assets actually materialise. Its runs
# carry the same `kb/trigger` tag key as the corrections sensor's: the production
# dagster.yaml limits that key to one run at a time, so two refreshes never race to
# write and promote index versions.
automation_sensor = dg.AutomationConditionSensorDefinition(
    "kb_automation",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=get_settings().automation_interval_s,
    run_tags={"kb/trigger": "automation"},
)

defs = dg.Definitions(
    assets=[*INGEST_ASSETS, *MAINTENANCE_ASSETS, *EFFECT_ASSETS],
    asset_checks=INGEST_CHECKS,
    jobs=JOBS,
    sensors=[automation_sensor, *SENSORS],
    resources=build_resources(get_settings()),
    # The pipeline is a short chain of database-bound steps: one process per run avoids
    # the multiprocess executor's ~3 s per step on small machines.
    executor=dg.in_process_executor,
)
