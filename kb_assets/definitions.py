"""The code location loaded by ``dagster dev`` / the gRPC server (see workspace.yaml).

The entry point: the only place that reads the process settings (``get_settings()``),
when Dagster loads the location (``defs`` is lazy, not built at import).
Everything else is built from that one Settings object by ``build_definitions``, so a
test or a deployment that builds its own Settings gets exactly that configuration.
"""

from __future__ import annotations

import dagster as dg

from kb_assets.automation import daily_partitions, with_timezone
from kb_assets.effect import EFFECT_ASSETS
from kb_assets.evaluation import candidate_passes_eval, promoted_index, rag_eval
from kb_assets.index import (
    chunk_embeddings,
    cleaned_markdown,
    no_personal_data_in_chunks,
    pii_free_chunks,
)
from kb_assets.maintenance import MAINTENANCE_ASSETS
from kb_assets.resources import (
    ConfluenceResource,
    DatabaseResource,
    EmbedderResource,
    FilesSourceResource,
    JiraResource,
    KbSettings,
    NotificationsResource,
    PyrusResource,
)
from kb_assets.sensors import (
    corrections_refresh,
    corrections_sensor_every,
    events_refresh,
    notify_run_failures,
    source_events_sensor_every,
)
from kb_assets.sources import (
    kb_corrections,
    person_directory,
    raw_confluence_pages,
    raw_files,
    raw_jira_issues,
    raw_pyrus_tickets,
    source_event_updates,
)
from kb_core.settings import Settings, get_settings
from kb_core.sources import configured


def build_resources(
    settings: Settings, *, database_url: str | None = None
) -> dict[str, dg.ConfigurableResource]:
    """The pipeline's resources; ``database_url`` overrides the settings' database (a
    caller that already opened the database, e.g. the CLI owning the embedded server)."""
    config = KbSettings.from_settings(settings)
    return {
        "database": DatabaseResource(kb_settings=config, database_url=database_url),
        "embedder": EmbedderResource(
            kb_settings=config,
            provider=settings.embedding.provider,
            threads=settings.embedding.threads,
            batch_size=settings.embedding.packaged_batch_size,
        ),
        "files_source": FilesSourceResource(
            root=str(settings.files.dir) if settings.files.dir else None
        ),
        "confluence": ConfluenceResource(kb_settings=config),
        "pyrus": PyrusResource(kb_settings=config),
        "jira": JiraResource(kb_settings=config),
        "notifications": NotificationsResource(kb_settings=config),
    }


def configured_sources(settings: Settings) -> list[dg.AssetsDefinition]:
    """The source assets the settings configure. A source without its settings is left
    out rather than materialised as ``enabled=False`` every night; the pending-events
    asset stays (webhooks may queue events whatever is configured)."""
    pyrus = configured.pyrus_enabled(settings)
    wanted = {
        person_directory: settings.pii.directory and pyrus,
        raw_files: settings.files.dir is not None,
        raw_confluence_pages: configured.confluence_enabled(settings),
        raw_jira_issues: configured.jira_enabled(settings),
        raw_pyrus_tickets: pyrus and bool(settings.pyrus.form_ids),
        kb_corrections: pyrus and settings.pyrus.corrections_form_id is not None,
        source_event_updates: True,
    }
    return [asset for asset, on in wanted.items() if on]


def _depending_on(asset: dg.AssetsDefinition, keys: set[dg.AssetKey]) -> dg.AssetsDefinition:
    """The asset with its dependencies limited to ``keys`` (sources left out)."""
    return asset.map_asset_specs(
        lambda spec: spec.replace_attributes(
            deps=[dep for dep in spec.deps if dep.asset_key in keys]
        )
    )


def build_definitions(settings: Settings) -> dg.Definitions:
    """The code location for ``settings``: assets, checks, jobs, sensors, resources."""
    timezone = settings.schedule.stats_timezone
    sources = configured_sources(settings)
    source_keys = {asset.key for asset in sources}
    ingest = [
        *sources,
        _depending_on(cleaned_markdown, source_keys),
        pii_free_chunks,
        chunk_embeddings,
        rag_eval,
        promoted_index,
    ]
    days = daily_partitions(settings.schedule.stats_start_date, settings.schedule.stats_timezone)
    effect = [
        asset.map_asset_specs(lambda spec: spec.replace_attributes(partitions_def=days))
        if asset.partitions_def is not None
        else asset
        for asset in EFFECT_ASSETS
    ]
    assets = [with_timezone(a, timezone) for a in [*ingest, *MAINTENANCE_ASSETS, *effect]]

    jobs: list[dg.UnresolvedAssetJobDefinition] = [events_refresh]
    sensors: list[dg.SensorDefinition] = [
        automation_sensor_every(settings.schedule.automation_interval_s),
        source_events_sensor_every(settings.events.poll_s),
        notify_run_failures,
    ]
    if kb_corrections in sources:
        jobs.append(corrections_refresh)
        sensors.append(corrections_sensor_every(settings.schedule.corrections_poll_s))
    return dg.Definitions(
        assets=assets,
        asset_checks=[no_personal_data_in_chunks, candidate_passes_eval],
        jobs=jobs,
        sensors=sensors,
        resources=build_resources(settings),
        # The pipeline is a short chain of database-bound steps: one process per run
        # avoids the multiprocess executor's ~3 s per step on small machines.
        executor=dg.in_process_executor,
    )


def automation_sensor_every(seconds: int) -> dg.AutomationConditionSensorDefinition:
    # The implicit default automation sensor starts STOPPED; this one runs from the start
    # so the daily on_cron sources and the eager downstream assets actually materialise.
    # Its runs carry the same `kb/trigger` tag key as the corrections sensor's: the
    # production dagster.yaml limits that key to one run at a time, so two refreshes never
    # race to write and promote index versions.
    return dg.AutomationConditionSensorDefinition(
        "kb_automation",
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=seconds,
        run_tags={"kb/trigger": "automation"},
    )


@dg.definitions
def defs() -> dg.Definitions:
    """The code location Dagster loads: the process settings, read here and only here.

    Lazy (``@dg.definitions``): importing this module reads no environment, so a test or
    a tool imports ``build_definitions`` and builds the location from its own settings.
    """
    return build_definitions(get_settings())
