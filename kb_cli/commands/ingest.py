"""`kb ingest`: load sources into the knowledge base (the ingest assets, run in-process)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from kb_cli.context import settings_of
from kb_cli.output import print_ingest_summary
from kb_core.db import open_database

app = typer.Typer(help="Load sources into the knowledge base.", no_args_is_help=True)


@app.command("files")
def ingest_files(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="Folder of Markdown/HTML articles.")],
) -> None:
    """Ingest a folder: Markdown → chunks → embeddings → pgvector (as Dagster assets)."""
    from kb_cli.dagster_runs import materialize_ingest

    settings = settings_of(ctx)
    root = directory.expanduser().resolve()
    if not root.is_dir():
        raise typer.BadParameter(f"not a folder: {directory}")
    db = open_database(settings)
    started = time.perf_counter()
    summary = materialize_ingest(settings, db, root)
    print_ingest_summary(summary, time.perf_counter() - started)


@app.command("sources")
def ingest_sources(ctx: typer.Context) -> None:
    """Sync every configured source (Confluence, Pyrus tickets, corrections) and index it."""
    from kb_cli.dagster_runs import materialize_ingest

    settings = settings_of(ctx)
    db = open_database(settings)
    started = time.perf_counter()
    summary = materialize_ingest(settings, db, settings.files.dir)
    print_ingest_summary(summary, time.perf_counter() - started)
