"""The code location loaded by ``dagster dev`` / the gRPC server (see workspace.yaml)."""

from __future__ import annotations

import dagster as dg

from kb_assets.assets import INGEST_ASSETS
from kb_assets.resources import DatabaseResource, EmbedderResource, FilesSourceResource
from kb_core.settings import Settings, get_settings


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    return {
        "database": DatabaseResource(
            database_url=settings.database_url.get_secret_value() if settings.database_url else None
        ),
        "embedder": EmbedderResource(
            provider=settings.embedder,
            threads=settings.embed_threads,
            batch_size=settings.embed_batch_size,
        ),
        "files_source": FilesSourceResource(
            root=str(settings.files_dir) if settings.files_dir else None
        ),
    }


defs = dg.Definitions(
    assets=INGEST_ASSETS,
    resources=build_resources(get_settings()),
    # The pipeline is a short chain of database-bound steps: one process per run avoids
    # the multiprocess executor's ~3 s per step on small machines.
    executor=dg.in_process_executor,
)
