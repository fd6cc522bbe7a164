"""`kb demo`: the product end to end against the local fakes, and what it asks.

The questions are phrased as users write them, not copied from the articles. The demo
runs on settings derived from the invocation's (pointed at the fakes) and passes them
down; it changes neither the process environment nor the process-wide settings.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import typer

from kb_cli.commands.effect import effect_report
from kb_cli.output import console, print_hits, print_ingest_summary
from kb_cli.workers import start_workers
from kb_core.db import Database, open_database
from kb_core.settings import Settings

if TYPE_CHECKING:
    from kb_fakes.services import FakeServices

DEMO_QUESTIONS = (
    "Не приходят уведомления о новых задачах на почту, что проверить?",
    "Как дать сотруднику доступ только к одной форме?",
    "Бот не отвечает на вебхук, в логах ошибка подписи",
)

# The ticket `kb demo` files on the fake Pyrus for the bot to answer.
DEMO_TICKET = {
    "form_id": 321,
    "subject": "Перестали приходить письма о новых заявках",
    "fields": [
        {"id": 1, "code": "u_subject", "type": "text", "value": "Перестали приходить письма"},
        {
            "id": 2,
            "code": "u_description",
            "type": "text",
            "value": "Коллегам уведомления о новых заявках приходят на почту, а мне со вчерашнего "
            "дня нет. Что проверить?",
        },
    ],
    "text": "Коллегам уведомления о новых заявках приходят на почту, а мне нет.",
    # The customer wrote by e-mail: the draft the agent sends goes back that way.
    "channel": {"type": "email"},
}

# The agent who approves the bot's draft, and the command they write.
DEMO_AGENT = {"id": 1101, "type": "user"}
DEMO_SEND_COMMAND = "@Ассистент отправить"


def _demo_bot(settings: Settings, db: Database, fakes: FakeServices) -> None:
    """A ticket filed on the fake Pyrus, its signed webhook, and the bot's comment."""
    import httpx

    from bot_api.app import create_app
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
    thread = start_workers(settings, db, stop)
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


def _demo_send(fakes: FakeServices, api_url: str, task_id: int) -> None:
    """The agent approves the draft with «@Ассистент отправить»: the bot sends it to the
    customer once, even when Pyrus retries the webhook."""
    import httpx

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
    report, files = effect_report(settings, db, date(2026, 5, 1), date(2026, 11, 20))
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
    app = create_app(settings.with_overrides(console={"open": True}))
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def demo_settings(settings: Settings, env: Mapping[str, str]) -> Settings:
    """``settings`` pointed at the fakes: their ``KB_*`` variables applied as the
    environment would apply them, but as a new object, so the process environment and the
    process-wide settings stay untouched."""
    return settings.with_env(env)


def run_demo(base: Settings, *, serve: bool, port: int) -> None:
    """The product end to end against the local fakes: ingest, search, the bot answering
    and sending, the measured effect, then the agent console."""
    from kb_cli.dagster_runs import materialize_ingest
    from kb_core.embeddings import query_embedder
    from kb_core.search import options_from_settings, search
    from kb_fakes.services import start_fakes

    console.rule("Pyrus knowledge-base assistant: demo")
    fakes = start_fakes()
    try:
        # The connectors talk to the fakes exactly as they would to Confluence and Pyrus.
        settings = demo_settings(base, fakes.env())
        console.print(
            f"fake Confluence at {fakes.confluence.url} "
            f"({len(fakes.confluence_store.pages)} pages), "
            f"fake Pyrus at {fakes.pyrus.url} ({len(fakes.pyrus_store.tasks)} tasks)"
        )
        db = open_database(settings)
        if db.server is not None:
            console.print(
                f"embedded PostgreSQL under {settings.runtime.data_dir} "
                f"(ready in {db.server.start_seconds:.2f} s), pgvector {db.pgvector_version}"
            )
        started = time.perf_counter()
        summary = materialize_ingest(settings, db, None)
        print_ingest_summary(summary, time.perf_counter() - started)
        embedder = query_embedder(settings)
        with db.connection() as conn:
            for question in DEMO_QUESTIONS:
                hits = search(conn, embedder, question, options_from_settings(settings, k=3))
                print_hits(question, hits)
        _demo_bot(settings, db, fakes)
        _demo_effect(settings, db)
        _demo_simulated_effect()
        console.print('Try your own question: .venv/bin/kb search "…" --k 5')
        _demo_console(settings, port, serve)
    finally:
        fakes.stop()
