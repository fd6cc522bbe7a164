"""`kb search`: the knowledge base as the bot searches it."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from kb_cli.context import settings_of
from kb_cli.output import console, print_hits
from kb_core.db import open_database


def search_command(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="The question, in any words.")],
    k: Annotated[int, typer.Option("--k", min=1, max=100, help="Number of hits.")] = 5,
    mode: Annotated[str | None, typer.Option(help="hybrid, vector or lexical.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print hits as a JSON list.")] = False,
    source: Annotated[
        list[str] | None,
        typer.Option("--source", help="Only these sources (confluence, jira, pyrus, …)."),
    ] = None,
    space: Annotated[
        list[str] | None,
        typer.Option("--space", help="Only these Confluence spaces / Jira projects."),
    ] = None,
    form: Annotated[
        list[int] | None, typer.Option("--form", help="Only tickets of these Pyrus forms.")
    ] = None,
) -> None:
    """Search the knowledge base (hybrid by default; every hit explains its score)."""
    from kb_core.embeddings import query_embedder
    from kb_core.index.versions import NoActiveVersion
    from kb_core.search import MODES, SearchScope, options_from_settings, search
    from kb_core.search.hybrid import ModelMismatch

    if mode is not None and mode not in MODES:
        raise typer.BadParameter(f"mode must be one of {', '.join(MODES)}")
    settings = settings_of(ctx)
    db = open_database(settings)
    scope = SearchScope.of(source, space, form)
    options = options_from_settings(settings, mode=mode, k=k, scope=scope)
    with db.connection() as conn:
        try:
            hits = search(conn, query_embedder(settings), query, options)
        except (NoActiveVersion, ModelMismatch) as exc:
            # Not the generic one-line error: this one says what to run first.
            console.print(f"[red]{exc}[/red] (run `kb ingest files DIR` or `kb demo` first)")
            raise typer.Exit(1) from exc
    if as_json:
        sys.stdout.write(json.dumps([h.as_json() for h in hits], ensure_ascii=False) + "\n")
        return
    print_hits(query, hits)
