"""`kb demo`: the command; the orchestration is :mod:`kb_cli.demo`."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from kb_cli.context import settings_of


def demo(
    ctx: typer.Context,
    serve: Annotated[
        bool | None,
        typer.Option(
            help="Serve the agent console at the end until Ctrl-C (default: when run "
            "from a terminal)."
        ),
    ] = None,
    port: Annotated[int, typer.Option(help="Port of the agent console.")] = 8000,
) -> None:
    """Run the product end to end on its embedded defaults, against the local fakes."""
    from kb_cli.demo import run_demo

    run_demo(settings_of(ctx), serve=sys.stdin.isatty() if serve is None else serve, port=port)
