"""`kb dagster`: the Dagster UI and daemon on the knowledge base's own database."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from kb_cli.context import settings_of
from kb_cli.output import console
from kb_core.db import open_database
from kb_core.settings import PROJECT_ROOT

app = typer.Typer(help="The Dagster UI and daemon.", no_args_is_help=True)


@app.command("dev")
def dagster_dev(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address of the web UI.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the web UI.")] = 3000,
) -> None:
    """Run `dagster dev` on the same (embedded) PostgreSQL; stops it on exit."""
    from kb_cli.dagster_runs import dagster_env
    from kb_cli.supervise import run_supervised

    settings = settings_of(ctx)
    db = open_database(settings)
    env = {**os.environ, **dagster_env(settings, db), "DATABASE_URL": db.url}
    if "DAGSTER_PG_URL" not in env:
        raise typer.BadParameter("set DAGSTER_PG_URL for Dagster's storage on DATABASE_URL")
    Path(env["DAGSTER_STORAGE_DIR"]).mkdir(parents=True, exist_ok=True)
    dagster_bin = Path(sys.executable).with_name("dagster")
    command = [str(dagster_bin), "dev", "-w", str(PROJECT_ROOT / "workspace.yaml")]
    command += ["-h", host, "-p", str(port)]
    console.print(f"Dagster UI: http://{host}:{port} (Ctrl-C stops it and the database)")
    raise typer.Exit(run_supervised(command, env=env, cwd=PROJECT_ROOT))
