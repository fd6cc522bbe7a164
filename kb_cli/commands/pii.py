"""`kb pii`: personal data — scrub or scan text, measure the scrubber."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, cast

import typer
from rich.table import Table

from kb_cli.context import settings_of
from kb_cli.output import console

app = typer.Typer(
    help="Personal data: scrub or scan text, measure the scrubber.", no_args_is_help=True
)


@app.command("scrub")
def pii_scrub(ctx: typer.Context) -> None:
    """Read UTF-8 text on stdin, print it with personal data replaced (lines kept)."""
    from kb_core.pii import scrubber_from_settings

    scrubber = scrubber_from_settings(settings_of(ctx))
    sys.stdout.write(scrubber.scrub(sys.stdin.read()))


@app.command("scan")
def pii_scan(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print findings as a JSON list.")] = False,
) -> None:
    """Read UTF-8 text on stdin, list the personal data found (type, offsets, score; no values)."""
    from kb_core.pii import scrubber_from_settings

    findings = scrubber_from_settings(settings_of(ctx)).scan(sys.stdin.read())
    if as_json:
        sys.stdout.write(json.dumps([f.as_json() for f in findings]) + "\n")
        return
    table = Table(title=f"{len(findings)} findings")
    for column in ("type", "start", "end", "score"):
        table.add_column(column)
    for finding in findings:
        row = finding.as_json()
        table.add_row(row["type"], str(row["start"]), str(row["end"]), str(row["score"]))
    console.print(table)


@app.command("eval")
def pii_eval(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Precision and recall per entity type on the labelled set (evals/pii)."""
    from evals.pii_eval import evaluate_parts
    from kb_core.pii import scrubber_from_settings

    report = evaluate_parts(scrubber_from_settings(settings_of(ctx)))
    if as_json:
        sys.stdout.write(json.dumps(report, ensure_ascii=False) + "\n")
        return
    table = Table(title=f"PII scrubber on {report['samples']} labelled samples")
    for column in ("type", "gold", "recall", "type recall", "predicted", "precision"):
        table.add_column(column, justify="right")
    # evaluate_parts reports plain JSON: per_type and parts are mappings of dicts.
    per_type = cast(dict[str, dict[str, Any]], report["per_type"])
    parts = cast(dict[str, dict[str, Any]], report["parts"])
    for kind, row in per_type.items():
        table.add_row(
            kind,
            str(row["gold"]),
            str(row["recall"] if row["recall"] is not None else "–"),
            str(row["type_recall"] if row["type_recall"] is not None else "–"),
            str(row["predicted"]),
            str(row["precision"] if row["precision"] is not None else "–"),
        )
    console.print(table)
    console.print(f"overall recall {report['recall']}, precision {report['precision']}")
    for name, part in parts.items():
        person = part["per_type"].get("PERSON", {})
        console.print(
            f"{name}: {part['samples']} samples, recall {part['recall']}, precision "
            f"{part['precision']}, PERSON recall {person.get('recall', '–')}, "
            f"false positives {part['false_positives']}"
        )
