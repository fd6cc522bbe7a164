"""docs/cli.md is the `kb` reference as the commands describe themselves today."""

from kb_cli.reference import REFERENCE, render


def test_the_cli_reference_is_current():
    assert REFERENCE.read_text("utf-8") == render(), (
        "docs/cli.md is stale: run `.venv/bin/python -m kb_cli.reference`"
    )
