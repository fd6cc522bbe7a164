"""`kb`: the command line of the knowledge-base assistant.

Verbs are grouped by what they act on (db, ingest, search, ...); later capabilities add
their own groups here. Errors that a person can fix are printed as one clear line and a
non-zero exit code, not as a traceback.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from kb_cli import runtime
from kb_cli.dagster_runs import IngestFailed
from kb_core.db import Database, DatabaseError, MigrationError, open_database
from kb_core.db import embedded as embedded_pg
from kb_core.db.connection import describe
from kb_core.models import SearchHit
from kb_core.settings import PROJECT_ROOT, Settings, get_settings
from kb_core.sources.files import SourceError
from kb_core.sources.http import SourceHTTPError

if TYPE_CHECKING:
    from kb_core.bot.worker import WorkerHealth

app = typer.Typer(help="Pyrus knowledge-base assistant.", no_args_is_help=True)
db_app = typer.Typer(help="The knowledge-base database.", no_args_is_help=True)
ingest_app = typer.Typer(help="Load sources into the knowledge base.", no_args_is_help=True)
dagster_app = typer.Typer(help="The Dagster UI and daemon.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(ingest_app, name="ingest")
convert_app = typer.Typer(help="Format conversions, for checking content.", no_args_is_help=True)
app.add_typer(dagster_app, name="dagster")
app.add_typer(convert_app, name="convert")
eval_app = typer.Typer(help="Measure retrieval quality.", no_args_is_help=True)
index_app = typer.Typer(help="Index versions: list, promote, maintain.", no_args_is_help=True)
app.add_typer(index_app, name="index")
app.add_typer(eval_app, name="eval")
pii_app = typer.Typer(
    help="Personal data: scrub or scan text, measure the scrubber.", no_args_is_help=True
)
app.add_typer(pii_app, name="pii")
effect_app = typer.Typer(
    help="The assistant's measured effect: ticket categories, draft use, time saved.",
    no_args_is_help=True,
)
app.add_typer(effect_app, name="effect")

console = Console()
err_console = Console(stderr=True)


@app.callback()
def _setup() -> None:
    runtime.configure(get_settings().log_level)


@db_app.command("migrate")
def db_migrate() -> None:
    """Apply pending SQL migrations (creating the embedded database when needed)."""
    from kb_core.db.migrations import applied_versions

    db = open_database(get_settings())
    with db.connection() as conn:
        versions = applied_versions(conn)
    console.print(
        f"database {describe(db.url)}: pgvector {db.pgvector_version}, "
        f"migrations applied: {', '.join(f'{v:04d}' for v in versions)}"
    )


@db_app.command("start")
def db_start() -> None:
    """Start the embedded PostgreSQL and leave it running (other commands reuse it)."""
    settings = get_settings()
    if settings.database_url is not None:
        raise typer.BadParameter("DATABASE_URL is set: there is no embedded server to start")
    db = open_database(settings, detach=True)
    assert db.server is not None
    console.print(f"embedded PostgreSQL running ({db.server.start_seconds:.2f} s): {db.url}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded PostgreSQL."""
    stopped = embedded_pg.stop(get_settings().data_dir)
    console.print("stopped" if stopped else "not running")


@db_app.command("status")
def db_status() -> None:
    """Show which database is used and whether the embedded server runs."""
    settings = get_settings()
    if settings.database_url is not None:
        console.print(f"external database: {describe(settings.database_url.get_secret_value())}")
        return
    uri = embedded_pg.running_uri(settings.data_dir)
    where = embedded_pg.pgdata_dir(settings.data_dir)
    console.print(f"embedded PostgreSQL at {where}: {'running, ' + uri if uri else 'stopped'}")


@ingest_app.command("files")
def ingest_files(
    directory: Annotated[Path, typer.Argument(help="Folder of Markdown/HTML articles.")],
) -> None:
    """Ingest a folder: Markdown → chunks → embeddings → pgvector (as Dagster assets)."""
    from kb_cli.dagster_runs import materialize_ingest

    settings = get_settings()
    root = directory.expanduser().resolve()
    if not root.is_dir():
        raise typer.BadParameter(f"not a folder: {directory}")
    db = open_database(settings)
    started = time.perf_counter()
    summary = materialize_ingest(settings, db, root)
    _print_ingest_summary(summary, time.perf_counter() - started)


@ingest_app.command("sources")
def ingest_sources() -> None:
    """Sync every configured source (Confluence, Pyrus tickets, corrections) and index it."""
    from kb_cli.dagster_runs import materialize_ingest

    settings = get_settings()
    db = open_database(settings)
    started = time.perf_counter()
    summary = materialize_ingest(settings, db, settings.files_dir)
    _print_ingest_summary(summary, time.perf_counter() - started)


def _print_ingest_summary(summary: dict[str, dict[str, object]], seconds: float) -> None:
    table = Table(title=f"Ingest finished in {seconds:.1f} s", show_lines=False)
    table.add_column("asset")
    table.add_column("result")
    for asset, metadata in summary.items():
        shown = {
            k: v
            for k, v in metadata.items()
            if not isinstance(v, dict | list)
            # rag_eval reports every metric of every mode: the summary keeps the gated ones
            and (" " not in k or k in ("hybrid hit@5", "hybrid mrr@10"))
        }
        table.add_row(asset, ", ".join(f"{k}={v}" for k, v in shown.items()))
    console.print(table)


def _worker_thread(settings: Settings, db: Database, stop: threading.Event) -> WorkerHealth:
    """Start the worker threads (KB_BOT_WORKER_THREADS) sharing one bot context; the
    returned health knows the threads, their heartbeat and the jobs they hold."""
    from kb_core.bot.context import bot_context
    from kb_core.bot.worker import WorkerConfig, WorkerHealth, run_worker, shared_context

    config = WorkerConfig(
        lease_s=settings.bot_job_lease_s,
        poll_s=settings.bot_poll_s,
        max_attempts=settings.bot_max_attempts,
        backoff_s=settings.bot_retry_backoff_s,
    )
    health = WorkerHealth()
    context = shared_context(lambda: bot_context(settings))
    for n in range(settings.bot_worker_threads):
        thread = threading.Thread(
            target=run_worker,
            args=(db.connection, context, stop, config),
            kwargs={"health": health},
            name=f"kb-bot-worker-{n}",
            daemon=True,
        )
        thread.start()
        health.threads.append(thread)
    return health


def _stop_workers(db: Database, health: WorkerHealth | None, stop: threading.Event) -> None:
    """Graceful stop: no new jobs, a few seconds for the current ones, then the leases
    of those still running are handed back so another worker answers at once."""
    from kb_core.bot.worker import release

    stop.set()
    if health is None:
        return
    health.join(timeout=10)
    released = release(db.connection, health)
    if released:
        err_console.print(f"released {released} job(s) still being answered")


def _on_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT ask for a graceful stop. A Python handler matters under
    uvicorn too: it re-raises the signal it caught after shutting down, and with the
    default SIGTERM action that killed the process before any clean-up (the embedded
    PostgreSQL it started was left running)."""
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    worker: Annotated[bool, typer.Option(help="Also run the job worker in-process.")] = True,
) -> None:
    """The bot: the HTTP API (webhook, search, health, metrics) and the job worker."""
    import uvicorn

    from bot_api.app import create_app

    settings = get_settings()
    db = open_database(settings)
    stop = threading.Event()
    health = _worker_thread(settings, db, stop) if worker else None
    _on_signals(stop)
    try:
        uvicorn.run(
            create_app(settings, worker_health=health), host=host, port=port, log_level="info"
        )
    finally:
        _stop_workers(db, health, stop)
        db.close()


@app.command("worker")
def worker_command(
    heartbeat_file: Annotated[
        Path | None,
        typer.Option(
            help="Touched every few seconds while the worker threads live and poll, for a "
            "container health check (the worker serves no HTTP)."
        ),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            help="Serve the worker's Prometheus metrics (jobs, answers, LLM errors) on this "
            "port; the API's /metrics only counts what its own process did."
        ),
    ] = None,
) -> None:
    """Only the job worker (scale it out separately from the API). Runs until SIGTERM or
    SIGINT (exit 0); database outages are waited out, never a reason to exit."""
    if metrics_port is not None:
        from prometheus_client import start_http_server

        start_http_server(metrics_port)
    settings = get_settings()
    db = open_database(settings)
    stop = threading.Event()
    _on_signals(stop)
    health = _worker_thread(settings, db, stop)
    try:
        while not stop.is_set() and health.alive():
            if heartbeat_file is not None and health.problem(settings.bot_worker_stale_s) is None:
                heartbeat_file.touch()
            stop.wait(5)
    finally:
        died = not stop.is_set()
        _stop_workers(db, health, stop)
        db.close()
    if died:  # a worker thread ended by itself: a bug, not a state to run on in
        err_console.print("error: a worker thread stopped unexpectedly")
        raise typer.Exit(1)


@app.command("search")
def search_command(
    query: Annotated[str, typer.Argument(help="The question, in any words.")],
    k: Annotated[int, typer.Option("--k", min=1, max=100, help="Number of hits.")] = 5,
    mode: Annotated[str | None, typer.Option(help="hybrid, vector or lexical.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print hits as a JSON list.")] = False,
    source: Annotated[
        list[str] | None,
        typer.Option("--source", help="Only these sources (confluence, jira, pyrus, …)."),
    ] = None,
    space: Annotated[
        list[str] | None,
        typer.Option("--space", help="Only these Confluence spaces / Jira projects."),
    ] = None,
    form: Annotated[
        list[int] | None, typer.Option("--form", help="Only tickets of these Pyrus forms.")
    ] = None,
) -> None:
    """Search the knowledge base (hybrid by default; every hit explains its score)."""
    from kb_core.embeddings import query_embedder
    from kb_core.index.versions import NoActiveVersion
    from kb_core.search import MODES, SearchScope, options_from_settings, search
    from kb_core.search.hybrid import ModelMismatch

    if mode is not None and mode not in MODES:
        raise typer.BadParameter(f"mode must be one of {', '.join(MODES)}")
    settings = get_settings()
    db = open_database(settings)
    scope = SearchScope.of(source, space, form)
    options = options_from_settings(settings, mode=mode, k=k, scope=scope)
    with db.connection() as conn:
        try:
            hits = search(conn, query_embedder(settings), query, options)
        except (NoActiveVersion, ModelMismatch) as exc:
            console.print(f"[red]{exc}[/red] (run `kb ingest files DIR` or `kb demo` first)")
            raise typer.Exit(1) from exc
    if as_json:
        sys.stdout.write(json.dumps([h.as_json() for h in hits], ensure_ascii=False) + "\n")
        return
    _print_hits(query, hits)


def _print_hits(query: str, hits: list[SearchHit]) -> None:
    table = Table(title=f"«{query}»", show_lines=True)
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("document")
    table.add_column("snippet")
    for rank, hit in enumerate(hits, 1):
        document = hit.title
        if hit.heading_path and hit.heading_path != (hit.title,):
            document += "\n[dim]" + " › ".join(hit.heading_path) + "[/dim]"
        parts = [f"{hit.score:.3f}"]
        if hit.vector_score is not None:
            parts.append(f"[dim]vec {hit.vector_score:.2f}[/dim]")
        if hit.lexical_score is not None:
            parts.append(f"[dim]bm25 {hit.lexical_score:.1f}[/dim]")
        for name, factor in hit.boosts.items():
            parts.append(f"[dim]×{factor:g} {name}[/dim]")
        table.add_row(str(rank), "\n".join(parts), document, hit.snippet)
    if not hits:
        console.print(f"«{query}»: nothing found — is the knowledge base ingested?")
    else:
        console.print(table)


@index_app.command("list")
def index_list(
    namespace: Annotated[str, typer.Option(help="Index namespace.")] = "kb",
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Index versions, newest first: which one the bot reads, which one is being built."""
    from kb_core.index.versions import list_versions

    db = open_database(get_settings())
    with db.connection() as conn:
        versions = list_versions(conn, namespace)
    if as_json:
        rows = [
            {
                "id": v.id,
                "status": v.status,
                "model": v.embedding_model,
                "dimension": v.dimension,
                "chunks": v.chunks,
                "documents": v.documents,
                "created_at": v.created_at.isoformat(),
                "promoted_at": v.promoted_at.isoformat() if v.promoted_at else None,
            }
            for v in versions
        ]
        sys.stdout.write(json.dumps(rows) + "\n")
        return
    table = Table(title=f"index versions of {namespace!r}")
    for column in ("id", "status", "model", "chunks", "documents", "created", "promoted"):
        table.add_column(column)
    for v in versions:
        table.add_row(
            str(v.id),
            v.status,
            f"{v.embedding_model or '-'} ({v.dimension or '-'})",
            str(v.chunks if v.chunks is not None else "-"),
            str(v.documents if v.documents is not None else "-"),
            f"{v.created_at:%Y-%m-%d %H:%M}",
            f"{v.promoted_at:%Y-%m-%d %H:%M}" if v.promoted_at else "-",
        )
    console.print(table)


@index_app.command("promote")
def index_promote(namespace: Annotated[str, typer.Option(help="Index namespace.")] = "kb") -> None:
    """Promote the candidate version now, if its gates pass (the pipeline does this too)."""
    from kb_core.index.versions import PromotionRefused, promote

    db = open_database(get_settings())
    with db.connection() as conn:
        try:
            result = promote(conn, namespace)
        except PromotionRefused as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(1) from exc
    if result is None:
        console.print("no candidate version: nothing changed since the last promotion")
    else:
        console.print(
            f"version {result.version.id} is active ({result.version.chunks} chunks); "
            f"previous: {result.previous}"
        )


@index_app.command("rescrub")
def index_rescrub() -> None:
    """Fetch every source again and re-scrub it (after a scrubber upgrade or a changed
    allow/deny list): the database keeps no raw text to re-scrub from."""
    from kb_cli.dagster_runs import materialize_ingest
    from kb_core.index.documents import request_rescrub

    settings = get_settings()
    db = open_database(settings)
    with db.connection() as conn:
        marked = request_rescrub(conn)
    console.print(f"{marked} documents will be fetched and scrubbed again")
    started = time.perf_counter()
    summary = materialize_ingest(settings, db, settings.files_dir)
    _print_ingest_summary(summary, time.perf_counter() - started)


@index_app.command("maintain")
def index_maintain(
    reindex: Annotated[bool, typer.Option(help="Also REINDEX CONCURRENTLY.")] = True,
) -> None:
    """Purge retired rows, VACUUM ANALYZE and rebuild the search indexes (weekly asset)."""
    from kb_core.index.maintenance import run_maintenance

    settings = get_settings()
    db = open_database(settings)
    with db.connection() as conn:
        report = run_maintenance(
            conn, keep_versions=settings.index_keep_versions, reindex=reindex, log=console.print
        )
    console.print(
        f"purged {report.chunks_purged} chunks of {report.versions_purged} versions, "
        f"rebuilt {len(report.reindexed)} indexes in {report.seconds:.1f} s"
    )


def _demo_bot(settings: Settings, db: Database, fakes: Any) -> None:
    """A ticket filed on the fake Pyrus, its signed webhook, and the bot's comment."""
    import httpx

    from bot_api.app import create_app
    from kb_cli.demo import DEMO_TICKET
    from kb_core.text.markdown import html_to_markdown
    from kb_fakes.server import ServerThread

    console.rule("The bot answers a new ticket")
    spec = dict(DEMO_TICKET)
    # The fake Pyrus numbers tickets afresh on every run, but the database remembers the
    # tickets an earlier demo answered: a reused id would be taken for a duplicate webhook.
    with db.connection() as conn:
        row = conn.execute("SELECT max(task_id) FROM bot_jobs").fetchone()
    if row is not None and row[0] is not None:
        spec["id"] = int(row[0]) + 1
    task = fakes.pyrus_store.create_task(spec)
    console.print(f"ticket #{task['id']} on the fake Pyrus: «{task['subject']}»")
    stop = threading.Event()
    thread = _worker_thread(settings, db, stop)
    try:
        with ServerThread(create_app(settings), lifespan="on") as api:
            started = time.perf_counter()
            answer = httpx.post(
                f"{fakes.pyrus.url}/_admin/webhook",
                json={"task_id": task["id"], "url": f"{api.url}/pyrus/webhook"},
                timeout=60,
            ).json()
            console.print(f"webhook answered HTTP {answer['status']} {answer['body']}")
            deadline = time.monotonic() + 120
            posted: list[dict[str, Any]] = []
            while not posted and time.monotonic() < deadline:
                posted = [p for p in fakes.pyrus_store.posted if p["task_id"] == task["id"]]
                time.sleep(0.1)
            if not posted:
                console.print("[red]the bot did not answer in time[/red]")
                raise typer.Exit(1)
            seconds = time.perf_counter() - started
            console.print(f"internal comment posted after {seconds:.2f} s:\n")
            console.print(html_to_markdown(posted[0]["request"]["formatted_text"]))
            _demo_send(fakes, api.url, int(task["id"]))
    finally:
        stop.set()
        thread.join(timeout=30)


def _demo_send(fakes: Any, api_url: str, task_id: int) -> None:
    """The agent approves the draft with «@Ассистент отправить»: the bot sends it to the
    customer once, even when Pyrus retries the webhook."""
    import httpx

    from kb_cli.demo import DEMO_AGENT, DEMO_SEND_COMMAND

    console.rule("The agent sends the draft to the customer")
    store = fakes.pyrus_store
    httpx.post(
        f"{fakes.pyrus.url}/_admin/tasks/{task_id}/comments",
        json={"text": DEMO_SEND_COMMAND, "author": DEMO_AGENT, "mentions": [store.bot_id]},
        timeout=30,
    ).raise_for_status()
    console.print(f"agent's comment: «{DEMO_SEND_COMMAND}»")
    webhook = {"task_id": task_id, "url": f"{api_url}/pyrus/webhook"}
    httpx.post(f"{fakes.pyrus.url}/_admin/webhook", json=webhook, timeout=60)
    deadline = time.monotonic() + 60
    sent: list[dict[str, Any]] = []
    while len(sent) < 2 and time.monotonic() < deadline:
        sent = [p for p in store.posted if p["task_id"] == task_id][1:]
        time.sleep(0.1)
    # Pyrus retries the same body after 61 s and 122 s: the bot does not send twice.
    httpx.post(
        f"{fakes.pyrus.url}/_admin/webhook",
        json={**webhook, "replay": True, "retry": "2/3"},
        timeout=60,
    )
    time.sleep(1.0)
    to_customer = [
        p["request"]
        for p in store.posted
        if p["task_id"] == task_id and p["request"].get("channel")
    ]
    if len(to_customer) != 1:
        console.print(f"[red]expected one reply to the customer, got {len(to_customer)}[/red]")
        raise typer.Exit(1)
    channel = to_customer[0]["channel"]["type"]
    console.print(f"sent to the customer through «{channel}» (once, after a replayed webhook):\n")
    console.print(to_customer[0]["text"])


def _demo_effect(settings: Settings, db: Database) -> None:
    """The measured effect on the sample tickets (answered by a seed bot's drafts)."""
    from datetime import date

    console.rule("Measured effect on the sample tickets")
    report, files = _effect_report(settings, db, date(2026, 5, 1), date(2026, 11, 20))
    total = report.total
    console.print(
        f"{total.tickets} tickets, bot drafts on {total.bot_answered}: "
        f"{total.accepted} accepted, {total.edited} edited, {total.rewritten} rewritten; "
        f"≈{total.minutes_saved:.0f} agent minutes saved"
    )
    console.print(f"effect report: {files.html_path}")


def _demo_simulated_effect() -> None:
    """The estimator on a simulated history with a planted effect: it must find the
    30 % in the three categories where it was planted and nothing elsewhere."""
    from kb_core.effect.estimate import EstimateConfig, estimate_effects
    from kb_core.effect.report import format_effect
    from kb_core.effect.simulation import DEFAULT_SPECS, SimulationConfig, simulate
    from kb_core.texts import load_texts

    config = SimulationConfig()
    console.rule("Measured effect on a simulated history (planted: 30 % faster, 3 categories)")
    records = simulate(DEFAULT_SPECS, config, seed=0)
    per_category, total = estimate_effects(
        records, EstimateConfig(resamples=1000, metrics=("first_response",))
    )
    texts = load_texts()
    planted = {s.name: s.first_response_effect for s in DEFAULT_SPECS}
    console.print(
        f"{len(records)} simulated tickets; holdout {total.holdout}, assisted {total.assisted}, "
        f"before the start {total.before}. First response, median change [95 % interval]:"
    )
    for effect in [*per_category, total]:
        name = effect.category or "всего"
        truth = f"planted {-planted[name] * 100 + 0.0:+.0f} %" if name in planted else "pooled"
        console.print(
            f"  {name:<20} {format_effect(effect.controlled['first_response'], texts):<22} "
            f"({truth}; before/after "
            f"{format_effect(effect.before_after['first_response'], texts)})"
        )


def _demo_console(settings: Settings, port: int, serve: bool) -> None:
    """The agent console on the demo's data: served until Ctrl-C when asked (the fakes
    still run, so its feedback files corrections in the fake Pyrus), else its address."""
    url = f"http://127.0.0.1:{port}/"
    console.rule("Agent console")
    if not serve:
        console.print(f"Agent console: KB_CONSOLE_OPEN=true .venv/bin/kb serve, then open {url}")
        return
    import uvicorn

    from bot_api.app import create_app

    console.print(f"Agent console: {url} (no password in the demo; Ctrl-C stops it)")
    app = create_app(settings.model_copy(update={"console_open": True}))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


@app.command("demo")
def demo(
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
    from kb_cli.dagster_runs import materialize_ingest
    from kb_cli.demo import DEMO_QUESTIONS
    from kb_core.embeddings import query_embedder
    from kb_core.search import options_from_settings, search
    from kb_fakes.services import start_fakes

    console.rule("Pyrus knowledge-base assistant: demo")
    fakes = start_fakes()
    try:
        # The connectors talk to the fakes exactly as they would to Confluence and Pyrus.
        os.environ.update(fakes.env())
        get_settings.cache_clear()
        settings = get_settings()
        console.print(
            f"fake Confluence at {fakes.confluence.url} "
            f"({len(fakes.confluence_store.pages)} pages), "
            f"fake Pyrus at {fakes.pyrus.url} ({len(fakes.pyrus_store.tasks)} tasks)"
        )
        db = open_database(settings)
        if db.server is not None:
            console.print(
                f"embedded PostgreSQL under {settings.data_dir} "
                f"(ready in {db.server.start_seconds:.2f} s), pgvector {db.pgvector_version}"
            )
        started = time.perf_counter()
        summary = materialize_ingest(settings, db, None)
        _print_ingest_summary(summary, time.perf_counter() - started)
        embedder = query_embedder(settings)
        with db.connection() as conn:
            for question in DEMO_QUESTIONS:
                hits = search(conn, embedder, question, options_from_settings(settings, k=3))
                _print_hits(question, hits)
        _demo_bot(settings, db, fakes)
        _demo_effect(settings, db)
        _demo_simulated_effect()
        console.print('Try your own question: .venv/bin/kb search "…" --k 5')
        _demo_console(settings, port, sys.stdin.isatty() if serve is None else serve)
    finally:
        fakes.stop()


@app.command("fakes")
def fakes_command(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    confluence_port: Annotated[int, typer.Option(help="Port of the fake Confluence.")] = 8081,
    pyrus_port: Annotated[int, typer.Option(help="Port of the fake Pyrus.")] = 8082,
    embeddings_port: Annotated[
        int, typer.Option(help="Port of the fake OpenAI-compatible embedding server.")
    ] = 8083,
    llm_port: Annotated[int, typer.Option(help="Port of the fake OpenAI-compatible LLM.")] = 8084,
) -> None:
    """Run the fake Confluence, Pyrus (sample data), embedding server and LLM until Ctrl-C."""
    import threading

    from kb_fakes.embeddings import FAKE_EMBEDDING_KEY, create_embeddings_app
    from kb_fakes.llm import FAKE_LLM_KEY, start_fake_llm
    from kb_fakes.server import ServerThread
    from kb_fakes.services import start_fakes

    fakes = start_fakes(host, confluence_port, pyrus_port)
    embeddings = ServerThread(create_embeddings_app(), host, embeddings_port).start()
    llm = start_fake_llm(host, llm_port)
    console.print(f"fake Confluence: {fakes.confluence.url}   fake Pyrus: {fakes.pyrus.url}")
    console.print("Point the product at them with:")
    for key, value in fakes.env().items():
        console.print(f"  export {key}={value}")
    console.print(f"fake embedding server (hashed bag of words): {embeddings.url}/v1")
    console.print("To try the HTTP embedding provider against it:")
    console.print(f"  export KB_EMBEDDER=openai KB_EMBEDDING_URL={embeddings.url}/v1")
    console.print(f"  export KB_EMBEDDING_API_KEY={FAKE_EMBEDDING_KEY}")
    console.print(f"fake LLM (deterministic, JSON mode): {llm.url}/v1")
    console.print(f"  export KB_LLM_URL={llm.url}/v1 KB_LLM_API_KEY={FAKE_LLM_KEY}")
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        llm.stop()
        embeddings.stop()
        fakes.stop()


@convert_app.command("confluence")
def convert_confluence() -> None:
    """Read a Confluence storage-format body on stdin, print its Markdown."""
    from kb_core.text.confluence import confluence_to_markdown

    sys.stdout.write(confluence_to_markdown(sys.stdin.read()))


@dagster_app.command("dev")
def dagster_dev(
    host: Annotated[str, typer.Option(help="Address of the web UI.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the web UI.")] = 3000,
) -> None:
    """Run `dagster dev` on the same (embedded) PostgreSQL; stops it on exit."""
    from kb_cli.dagster_runs import dagster_env
    from kb_cli.supervise import run_supervised

    settings = get_settings()
    db = open_database(settings)
    env = {**os.environ, **dagster_env(settings, db), "DATABASE_URL": db.url}
    if "DAGSTER_PG_URL" not in env:
        raise typer.BadParameter("set DAGSTER_PG_URL for Dagster's storage on DATABASE_URL")
    Path(env["DAGSTER_STORAGE_DIR"]).mkdir(parents=True, exist_ok=True)
    dagster_bin = Path(sys.executable).with_name("dagster")
    command = [str(dagster_bin), "dev", "-w", str(PROJECT_ROOT / "workspace.yaml")]
    command += ["-h", host, "-p", str(port)]
    console.print(f"Dagster UI: http://{host}:{port} (Ctrl-C stops it and the database)")
    raise typer.Exit(run_supervised(command, env=env, cwd=PROJECT_ROOT))


@eval_app.command("squad")
def eval_squad(
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
    settings = get_settings()
    squad = load_squad(path)
    db = open_database(settings)
    with db.connection() as conn:
        indexed = index_squad(conn, squad, pipeline_embedder(settings), index_name)
        results = evaluate_squad(
            conn, squad, query_embedder(settings), modes=modes, k=k, namespace=index_name
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


@eval_app.command("golden")
def eval_golden(
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
    settings = get_settings()
    if golden:
        missing = [str(p) for p in golden if not p.is_file()]
        if missing:
            raise typer.BadParameter(f"golden set not found: {', '.join(missing)}")
        settings = settings.model_copy(
            update={"eval_golden_paths": ",".join(str(p.resolve()) for p in golden)}
        )
    scope = SearchScope.of(source, space, form)
    paths = golden_paths(settings)
    if not paths:
        raise typer.BadParameter(f"no golden set found in {settings.eval_golden_paths}")
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
    report: dict[str, object] = (
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
        for m in answers:
            table.add_row(m, *(str(run.metrics[m].get(key, "")) for key in keys))
        console.print(table, width=max(console.width, 120))
    for note in run.gate.get("notes", []):
        console.print(f"[yellow]{note}[/yellow]")


@eval_app.command("cases")
def eval_cases(
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

    settings = get_settings()
    thresholds = CaseThresholds(
        max_distance=settings.eval_case_max_distance,
        min_precision5=settings.eval_case_min_precision5,
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


@eval_app.command("report")
def eval_report(
    out: Annotated[Path, typer.Option(help="Where to write the HTML report.")] = Path(
        "eval-report.html"
    ),
) -> None:
    """Write a static HTML report of the evaluation history: charts and tables."""
    from evals.report import write_report

    db = open_database(get_settings())
    with db.connection() as conn:
        path = write_report(conn, out.expanduser().resolve())
    console.print(f"report written to {path}")


def _effect_report(settings: Settings, db: Database, start: Any, end: Any) -> Any:
    """Collect the outcomes of ``start``..``end`` from Pyrus, store them, write the report."""
    from datetime import timedelta

    from rich.progress import track

    from kb_core.effect.collect import collect_config, collect_day, ticket_classifier
    from kb_core.effect.reporting import period_report
    from kb_core.effect.stats import upsert_outcomes
    from kb_core.embeddings import query_embedder
    from kb_core.notify import PrintService, reports_dir, title, write_report
    from kb_core.settings import split_list
    from kb_core.sources import configured

    form_ids = [int(i) for i in split_list(settings.pyrus_form_ids)]
    if not configured.pyrus_enabled(settings) or not form_ids:
        raise typer.BadParameter("Pyrus is not configured (KB_PYRUS_LOGIN, KB_PYRUS_FORM_IDS)")
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    with configured.pyrus_client(settings) as client, db.connection() as conn:
        classify = ticket_classifier(conn, settings, client, query_embedder(settings))
        config = collect_config(settings, form_ids)
        for day in track(days, description="collecting tickets", console=err_console):
            upsert_outcomes(conn, collect_day(conn, client, day, config, classify))
        report = period_report(conn, start, end, settings, title=title("weekly_report"))
    files = write_report(
        report.html,
        reports_dir(settings),
        f"effect-{start.isoformat()}-{end.isoformat()}",
        PrintService.from_settings(settings),
    )
    return report, files


@effect_app.command("report")
def effect_report(
    start: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option("--to", help="Last day (inclusive), YYYY-MM-DD.")],
) -> None:
    """Collect the period's tickets from Pyrus (category, bot draft use, response times)
    and write the effect report: HTML, and PDF when KB_PRINT_SERVICE_URL is set."""
    from datetime import date

    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError as exc:
        raise typer.BadParameter(f"dates must be YYYY-MM-DD: {exc}") from exc
    if last < first:
        raise typer.BadParameter("--to is before --from")
    settings = get_settings()
    report, files = _effect_report(settings, open_database(settings), first, last)
    console.print(report.markdown)
    console.print(f"report written to {files.pdf_path or files.html_path}")


@pii_app.command("scrub")
def pii_scrub() -> None:
    """Read UTF-8 text on stdin, print it with personal data replaced (lines kept)."""
    from kb_core.pii import scrubber_from_settings

    scrubber = scrubber_from_settings(get_settings())
    sys.stdout.write(scrubber.scrub(sys.stdin.read()))


@pii_app.command("scan")
def pii_scan(
    as_json: Annotated[bool, typer.Option("--json", help="Print findings as a JSON list.")] = False,
) -> None:
    """Read UTF-8 text on stdin, list the personal data found (type, offsets, score; no values)."""
    from kb_core.pii import scrubber_from_settings

    findings = scrubber_from_settings(get_settings()).scan(sys.stdin.read())
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


@pii_app.command("eval")
def pii_eval(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Precision and recall per entity type on the labelled set (evals/pii)."""
    from evals.pii_eval import evaluate_parts
    from kb_core.pii import scrubber_from_settings

    report = evaluate_parts(scrubber_from_settings(get_settings()))
    if as_json:
        sys.stdout.write(json.dumps(report, ensure_ascii=False) + "\n")
        return
    table = Table(title=f"PII scrubber on {report['samples']} labelled samples")
    for column in ("type", "gold", "recall", "type recall", "predicted", "precision"):
        table.add_column(column, justify="right")
    for kind, row in report["per_type"].items():  # type: ignore[union-attr]
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
    for name, part in report["parts"].items():  # type: ignore[union-attr]
        person = part["per_type"].get("PERSON", {})
        console.print(
            f"{name}: {part['samples']} samples, recall {part['recall']}, precision "
            f"{part['precision']}, PERSON recall {person.get('recall', '–')}, "
            f"false positives {part['false_positives']}"
        )


def main() -> None:
    try:
        app()
    except (DatabaseError, MigrationError, SourceError, SourceHTTPError, IngestFailed) as exc:
        err_console.print(f"[bold red]error:[/bold red] {exc}")
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
