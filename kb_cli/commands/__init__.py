"""The `kb` command modules, one per group of verbs; `kb_cli.main` composes them.

Each module's commands take the Typer context and read the invocation's settings from it
(:func:`kb_cli.context.settings_of`); none builds settings of its own.
"""
