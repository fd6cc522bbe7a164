"""`kb effect`: the assistant's measured effect — ticket categories, draft use, time saved."""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from kb_cli.context import settings_of
from kb_cli.output import console, err_console
from kb_core.db import Database, open_database
from kb_core.settings import Settings

if TYPE_CHECKING:
    from kb_core.effect.reporting import PeriodReport
    from kb_core.notify import ReportFiles

app = typer.Typer(
    help="The assistant's measured effect: ticket categories, draft use, time saved.",
    no_args_is_help=True,
)


def effect_report(
    settings: Settings, db: Database, start: date, end: date
) -> tuple[PeriodReport, ReportFiles]:
    """Collect the outcomes of ``start``..``end`` from Pyrus, store them, write the report
    (`kb effect report`, and `kb demo` on the sample tickets)."""
    from rich.progress import track

    from kb_core.effect.collect import collect_days
    from kb_core.effect.reporting import period_report
    from kb_core.embeddings import query_embedder
    from kb_core.notify import PrintService, reports_dir, title, write_report
    from kb_core.sources import configured

    form_ids = list(settings.pyrus.form_ids)
    if not configured.pyrus_enabled(settings) or not form_ids:
        raise typer.BadParameter("Pyrus is not configured (KB_PYRUS_LOGIN, KB_PYRUS_FORM_IDS)")
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    with configured.pyrus_client(settings) as client, db.connection() as conn:
        progress = track(days, description="collecting tickets", console=err_console)
        collect_days(conn, client, progress, settings, form_ids, query_embedder(settings))
        report = period_report(conn, start, end, settings, title=title("weekly_report"))
    files = write_report(
        report.html,
        reports_dir(settings),
        f"effect-{start.isoformat()}-{end.isoformat()}",
        PrintService.from_settings(settings),
    )
    return report, files


@app.command("report")
def effect_report_command(
    ctx: typer.Context,
    start: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option("--to", help="Last day (inclusive), YYYY-MM-DD.")],
) -> None:
    """Collect the period's tickets from Pyrus (category, bot draft use, response times)
    and write the effect report: HTML, and PDF when KB_PRINT_SERVICE_URL is set."""
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError as exc:
        raise typer.BadParameter(f"dates must be YYYY-MM-DD: {exc}") from exc
    if last < first:
        raise typer.BadParameter("--to is before --from")
    settings = settings_of(ctx)
    report, files = effect_report(settings, open_database(settings), first, last)
    console.print(report.markdown)
    console.print(f"report written to {files.pdf_path or files.html_path}")
