"""`kb`: the command line of the knowledge-base assistant.

This module only composes: the command modules (``kb_cli.commands``) hold the verbs,
grouped by what they act on; ``kb_cli.demo`` the demo. The root callback builds the
settings once per invocation and hands them down through the Typer context
(``kb_cli.context``); the root group turns any domain error into one clear line on
stderr and exit code 1 (``kb_cli.errors``).
"""

from __future__ import annotations

import typer

from kb_cli import runtime
from kb_cli.commands import (
    bot,
    convert,
    dagster,
    db,
    demo,
    effect,
    evaluate,
    fakes,
    index,
    ingest,
    pii,
    search,
)
from kb_cli.errors import ReportingGroup
from kb_core.settings import Settings, get_settings

app = typer.Typer(cls=ReportingGroup, help="Pyrus knowledge-base assistant.", no_args_is_help=True)
app.add_typer(db.app, name="db")
app.add_typer(ingest.app, name="ingest")
app.add_typer(dagster.app, name="dagster")
app.add_typer(convert.app, name="convert")
app.add_typer(index.app, name="index")
app.add_typer(evaluate.app, name="eval")
app.add_typer(pii.app, name="pii")
app.add_typer(effect.app, name="effect")
app.command("serve")(bot.serve)
app.command("worker")(bot.worker_command)
app.command("search")(search.search_command)
app.command("demo")(demo.demo)
app.command("fakes")(fakes.fakes_command)


@app.callback()
def _setup(ctx: typer.Context) -> None:
    # The one place the process settings are read; a caller (a test) may pass its own
    # Settings as ``obj`` and they are used as they are.
    if not isinstance(ctx.obj, Settings):
        ctx.obj = get_settings()
    runtime.configure(ctx.obj.runtime.log_level)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
