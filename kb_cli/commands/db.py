"""`kb db`: the knowledge-base database (embedded PostgreSQL or DATABASE_URL)."""

from __future__ import annotations

import typer

from kb_cli.context import settings_of
from kb_cli.output import console
from kb_core.db import embedded as embedded_pg
from kb_core.db import open_database
from kb_core.db.connection import describe

app = typer.Typer(help="The knowledge-base database.", no_args_is_help=True)


@app.command("migrate")
def db_migrate(ctx: typer.Context) -> None:
    """Apply pending SQL migrations (creating the embedded database when needed)."""
    from kb_core.db.migrations import applied_versions

    db = open_database(settings_of(ctx))
    with db.connection() as conn:
        versions = applied_versions(conn)
    console.print(
        f"database {describe(db.url)}: pgvector {db.pgvector_version}, "
        f"migrations applied: {', '.join(f'{v:04d}' for v in versions)}"
    )


@app.command("start")
def db_start(ctx: typer.Context) -> None:
    """Start the embedded PostgreSQL and leave it running (other commands reuse it)."""
    settings = settings_of(ctx)
    if settings.db.url is not None:
        raise typer.BadParameter("DATABASE_URL is set: there is no embedded server to start")
    db = open_database(settings, detach=True)
    assert db.server is not None
    console.print(f"embedded PostgreSQL running ({db.server.start_seconds:.2f} s): {db.url}")


@app.command("stop")
def db_stop(ctx: typer.Context) -> None:
    """Stop the embedded PostgreSQL."""
    stopped = embedded_pg.stop(settings_of(ctx).runtime.data_dir)
    console.print("stopped" if stopped else "not running")


@app.command("status")
def db_status(ctx: typer.Context) -> None:
    """Show which database is used and whether the embedded server runs."""
    settings = settings_of(ctx)
    if settings.db.url is not None:
        console.print(f"external database: {describe(settings.db.url.get_secret_value())}")
        return
    uri = embedded_pg.running_uri(settings.runtime.data_dir)
    where = embedded_pg.pgdata_dir(settings.runtime.data_dir)
    console.print(f"embedded PostgreSQL at {where}: {'running, ' + uri if uri else 'stopped'}")
