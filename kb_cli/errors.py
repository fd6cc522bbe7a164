"""Every domain error reaches the person at the terminal as one line, in one place.

The root command group catches :class:`kb_core.errors.KbError` around whatever command
runs, so a new error class needs no entry in a hand-kept list, and the same handling
applies whether `kb` runs as a process or a test invokes the Typer app in-process.
"""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape
from typer._click import Context  # Typer vendors click: the type its groups take
from typer.core import TyperGroup

from kb_cli.output import err_console
from kb_core.errors import KbError


class ReportingGroup(TyperGroup):
    """The root group: a :class:`KbError` becomes ``error: <message>`` on stderr, exit 1."""

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except KbError as exc:
            # One line: a message may span several (a YAML parser's pointer at the bad
            # spot), and soft_wrap keeps a long one unbroken. escape: a message may hold
            # brackets that rich would otherwise read as markup.
            message = " ".join(str(exc).split())
            err_console.print(f"[bold red]error:[/bold red] {escape(message)}", soft_wrap=True)
            raise typer.Exit(1) from None
