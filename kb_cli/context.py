"""The settings of one `kb` invocation, carried by the Typer context.

The root callback builds them once per invocation (or keeps the ones a caller passed as
``obj``, as tests do with ``CliRunner.invoke(app, args, obj=settings)``); every command
reads them from its context, so no command looks up process-wide settings itself and a
command that needs different settings (``kb demo``, ``kb eval golden --golden``) derives
them as objects and passes them down.
"""

from __future__ import annotations

import typer

from kb_core.settings import Settings


def settings_of(ctx: typer.Context) -> Settings:
    """The invocation's settings (child contexts inherit ``obj`` from the root)."""
    settings = ctx.obj
    if not isinstance(settings, Settings):
        raise RuntimeError("no settings in the command context: the root callback sets them")
    return settings
