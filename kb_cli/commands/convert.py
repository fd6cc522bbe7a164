"""`kb convert`: the format conversions the pipeline uses, for checking content by hand."""

from __future__ import annotations

import sys

import typer

app = typer.Typer(help="Format conversions, for checking content.", no_args_is_help=True)


@app.command("confluence")
def convert_confluence() -> None:
    """Read a Confluence storage-format body on stdin, print its Markdown."""
    from kb_core.text.confluence import confluence_to_markdown

    sys.stdout.write(confluence_to_markdown(sys.stdin.read()))
