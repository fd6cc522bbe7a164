"""`kb index`: index versions — list, promote, re-scrub, maintain."""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated

import typer
from rich.table import Table

from kb_cli.context import settings_of
from kb_cli.output import console, print_ingest_summary
from kb_core.db import open_database

app = typer.Typer(help="Index versions: list, promote, maintain.", no_args_is_help=True)


@app.command("list")
def index_list(
    ctx: typer.Context,
    namespace: Annotated[str, typer.Option(help="Index namespace.")] = "kb",
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Index versions, newest first: which one the bot reads, which one is being built."""
    from kb_core.index.versions import list_versions

    db = open_database(settings_of(ctx))
    with db.connection() as conn:
        versions = list_versions(conn, namespace)
    if as_json:
        rows = [
            {
                "id": v.id,
                "status": v.status,
                "model": v.embedding_model,
                "dimension": v.dimension,
                "chunks": v.chunks,
                "documents": v.documents,
                "created_at": v.created_at.isoformat(),
                "promoted_at": v.promoted_at.isoformat() if v.promoted_at else None,
            }
            for v in versions
        ]
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    table = Table(title=f"index versions of {namespace!r}")
    for column in ("id", "status", "model", "chunks", "documents", "created", "promoted"):
        table.add_column(column)
    for v in versions:
        table.add_row(
            str(v.id),
            v.status,
            f"{v.embedding_model or '-'} ({v.dimension or '-'})",
            str(v.chunks if v.chunks is not None else "-"),
            str(v.documents if v.documents is not None else "-"),
            f"{v.created_at:%Y-%m-%d %H:%M}",
            f"{v.promoted_at:%Y-%m-%d %H:%M}" if v.promoted_at else "-",
        )
    console.print(table)


@app.command("promote")
def index_promote(
    ctx: typer.Context, namespace: Annotated[str, typer.Option(help="Index namespace.")] = "kb"
) -> None:
    """Promote the candidate version now, if its gates pass (the pipeline does this too)."""
    from kb_core.index.versions import PromotionRefused, promote

    db = open_database(settings_of(ctx))
    with db.connection() as conn:
        try:
            result = promote(conn, namespace)
        except PromotionRefused as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from exc
    if result is None:
        console.print("no candidate version: nothing changed since the last promotion")
    else:
        console.print(
            f"version {result.version.id} is active ({result.version.chunks} chunks); "
            f"previous: {result.previous}"
        )


@app.command("rescrub")
def index_rescrub(ctx: typer.Context) -> None:
    """Fetch every source again and re-scrub it (after a scrubber upgrade or a changed
    allow/deny list): the database keeps no raw text to re-scrub from."""
    from kb_cli.dagster_runs import materialize_ingest
    from kb_core.index.documents import request_rescrub

    settings = settings_of(ctx)
    db = open_database(settings)
    with db.connection() as conn:
        marked = request_rescrub(conn)
    console.print(f"{marked} documents will be fetched and scrubbed again")
    started = time.perf_counter()
    summary = materialize_ingest(settings, db, settings.files.dir)
    print_ingest_summary(summary, time.perf_counter() - started)


@app.command("maintain")
def index_maintain(
    ctx: typer.Context,
    reindex: Annotated[bool, typer.Option(help="Also REINDEX CONCURRENTLY.")] = True,
) -> None:
    """Purge retired rows, VACUUM ANALYZE and rebuild the search indexes (weekly asset)."""
    from kb_core.index.maintenance import run_maintenance

    settings = settings_of(ctx)
    db = open_database(settings)
    with db.connection() as conn:
        report = run_maintenance(
            conn, keep_versions=settings.index.keep_versions, reindex=reindex, log=console.print
        )
    console.print(
        f"purged {report.chunks_purged} chunks of {report.versions_purged} versions, "
        f"rebuilt {len(report.reindexed)} indexes in {report.seconds:.1f} s"
    )
