"""`kb eval`: measure retrieval and answers (SQuAD files, the golden sets) and report."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from kb_cli.context import settings_of
from kb_cli.output import console
from kb_core.db import open_database

app = typer.Typer(help="Measure retrieval quality.", no_args_is_help=True)


@app.command("squad")
def eval_squad(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A SQuAD-format JSON file (e.g. XQuAD-ru).")],
    mode: Annotated[str, typer.Option(help="hybrid, vector, lexical, or all")] = "hybrid",
    k: Annotated[int, typer.Option("--k", min=1, max=100, help="Depth of the ranking.")] = 10,
    index_name: Annotated[
        str, typer.Option(help="Namespace to index the paragraphs in.")
    ] = "squad",
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Index a SQuAD file in its own namespace and measure retrieval on its questions."""
    from evals.squad import evaluate_squad, index_squad, load_squad
    from kb_core.embeddings import pipeline_embedder, query_embedder
    from kb_core.search import MODES

    if index_name == "kb":
        raise typer.BadParameter("the knowledge base's namespace is reserved")
    modes = list(MODES) if mode == "all" else [mode]
    if any(m not in MODES for m in modes):
        raise typer.BadParameter(f"mode must be one of {', '.join(MODES)} or all")
    settings = settings_of(ctx)
    squad = load_squad(path)
    db = open_database(settings)
    with db.connection() as conn:
        indexed = index_squad(conn, squad, pipeline_embedder(settings), index_name)
        results = evaluate_squad(
            conn,
            squad,
            query_embedder(settings),
            modes=modes,
            k=k,
            namespace=index_name,
            settings=settings,
        )
    report: dict[str, object] = results[modes[0]] if len(modes) == 1 else dict(results)
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")
        return
    console.print(f"indexed {indexed}")
    table = Table(title=f"{path.name}: {len(squad.cases)} questions")
    for column in ("mode", "hit@1", "hit@5", "mrr@10", "ndcg@10"):
        table.add_column(column, justify="right")
    for m, row in results.items():
        table.add_row(m, *(str(row[key]) for key in ("hit@1", "hit@5", "mrr@10", "ndcg@10")))
    console.print(table)


@app.command("golden")
def eval_golden(
    ctx: typer.Context,
    mode: Annotated[
        str,
        typer.Option(
            help="hybrid, vector, lexical (retrieval), default, opt_query, rerank (answers), or all"
        ),
    ] = "hybrid",
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
    golden: Annotated[
        list[Path] | None,
        typer.Option("--golden", help="Golden set file(s) instead of KB_EVAL_GOLDEN_PATHS."),
    ] = None,
    source: Annotated[
        list[str] | None, typer.Option("--source", help="Evaluate search within these sources.")
    ] = None,
    space: Annotated[
        list[str] | None,
        typer.Option("--space", help="… within these Confluence spaces / Jira projects."),
    ] = None,
    form: Annotated[list[int] | None, typer.Option("--form", help="… within these forms.")] = None,
) -> None:
    """Evaluate the ACTIVE index version on the golden sets (KB_EVAL_GOLDEN_PATHS); the run
    is stored with the others, so `kb eval report` and `kb eval cases` show it. Answer
    modes report the share of lint-clean drafts, chrF and similarity against the naive
    baseline measured on the same hits. With --source/--space/--form search is restricted
    to that scope (and only cases answerable in it count)."""
    from rich.progress import Progress

    from evals.configured import answer_scorer, gate_config, golden_paths
    from evals.harness import ANSWER_MODES, run_eval
    from kb_core.embeddings import query_embedder
    from kb_core.index.versions import NoActiveVersion, active_version
    from kb_core.search import MODES, SearchScope

    known = (*MODES, *ANSWER_MODES)
    modes = list(known) if mode == "all" else [mode]
    if any(m not in known for m in modes):
        raise typer.BadParameter(f"mode must be one of {', '.join(known)} or all")
    settings = settings_of(ctx)
    if golden:
        missing = [str(p) for p in golden if not p.is_file()]
        if missing:
            raise typer.BadParameter(f"golden set not found: {', '.join(missing)}")
        settings = settings.with_overrides(
            eval={"golden_paths": [str(p.resolve()) for p in golden]}
        )
    scope = SearchScope.of(source, space, form)
    paths = golden_paths(settings)
    if not paths:
        raise typer.BadParameter(f"no golden set found in {','.join(settings.eval.golden_paths)}")
    db = open_database(settings)
    embedder = query_embedder(settings)
    with db.connection() as conn:
        try:
            version = active_version(conn).id
        except NoActiveVersion as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from exc
        with Progress(console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("evaluating", total=None)
            run = run_eval(
                conn,
                embedder,
                settings,
                version=version,
                baseline_version=None,
                golden_paths=paths,
                answer=answer_scorer(settings, embedder),
                config=gate_config(settings),
                progress=lambda done, total: bar.update(task, completed=done, total=total),
                answer_modes=[m for m in modes if m in ANSWER_MODES],
                scope=None if scope.empty else scope,
            )
    report: Mapping[str, object] = (
        run.metrics[modes[0]] if len(modes) == 1 else {m: run.metrics[m] for m in modes}
    )
    if as_json:
        sys.stdout.write(json.dumps(report) + "\n")
        return
    retrieval = [m for m in modes if m in MODES]
    answers = [m for m in modes if m in ANSWER_MODES]
    if retrieval:
        table = Table(title=f"index version {version}: golden set, retrieval")
        keys: tuple[str, ...] = ("hit@1", "hit@5", "precision@5", "mrr@10", "ndcg@10")
        for column in ("mode", *keys):
            table.add_column(column, justify="right")
        for m in retrieval:
            table.add_row(m, *(str(run.metrics[m].get(key, "")) for key in keys))
        console.print(table)
    if answers:
        table = Table(title=f"index version {version}: golden set, drafts vs the naive baseline")
        keys = (
            "lint_clean",
            "chrf",
            "similarity",
            "baseline_lint_clean",
            "baseline_chrf",
            "baseline_similarity",
            "precision@5",
        )
        for column in ("mode", *keys):
            table.add_column(column, justify="right")
        for answer_mode in answers:
            table.add_row(
                answer_mode, *(str(run.metrics[answer_mode].get(key, "")) for key in keys)
            )
        console.print(table, width=max(console.width, 120))
    for note in run.gate.get("notes", []):
        console.print(f"[yellow]{note}[/yellow]")


@app.command("cases")
def eval_cases(
    ctx: typer.Context,
    run_id: Annotated[
        int | None, typer.Option("--run", help="Evaluation run (default: the latest).")
    ] = None,
    mode: Annotated[str | None, typer.Option(help="Only this mode's rows.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """The per-case table of an evaluation run in the seed's columns: test_id, mode,
    distance (1 − cosine of draft and reference embeddings), similarity, duration_s,
    precision@5, and pass/fail against KB_EVAL_CASE_MAX_DISTANCE / _MIN_PRECISION5."""
    from evals.cases import CaseThresholds, case_table

    settings = settings_of(ctx)
    thresholds = CaseThresholds(
        max_distance=settings.eval.case_max_distance,
        min_precision5=settings.eval.case_min_precision5,
    )
    db = open_database(settings)
    with db.connection() as conn:
        try:
            found, rows = case_table(conn, thresholds, run_id=run_id, mode=mode)
        except LookupError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from exc
    if as_json:
        sys.stdout.write(json.dumps({"run": found, "cases": rows}, ensure_ascii=False) + "\n")
        return
    columns = ("test_id", "mode", "distance", "similarity", "duration_s", "precision@5", "pass")
    table = Table(title=f"evaluation run {found}: per case")
    for column in columns:
        table.add_column(column, justify="left" if column in ("test_id", "mode") else "right")
    for row in rows:
        table.add_row(
            *("" if row[c] is None else str(row[c]) for c in columns[:-1]),
            "pass" if row["pass"] else "[red]fail[/red]",
        )
    console.print(table, width=max(console.width, 120))
    passed = sum(1 for row in rows if row["pass"])
    console.print(f"{passed} of {len(rows)} rows pass")


@app.command("report")
def eval_report(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option(help="Where to write the HTML report.")] = Path(
        "eval-report.html"
    ),
) -> None:
    """Write a static HTML report of the evaluation history: charts and tables."""
    from evals.report import write_report

    db = open_database(settings_of(ctx))
    with db.connection() as conn:
        path = write_report(conn, out.expanduser().resolve())
    console.print(f"report written to {path}")
