"""Benchmark: Jira issue sync and attachment conversion through the real clients.

(1) A fake Jira with ISSUES resolved issues (the sample issues cycled, each with its own
key and a few comments, some beyond the search result's first page of comments): the
full sync (JQL paging at the server cap, comment paging, documents built) and the upsert
into PostgreSQL; issues per second. (2) A fake Confluence page with ATTACHMENTS files
(PDF and DOCX built from text, alternating, about SIZE_KB each): listing, download over
HTTP and conversion to Markdown; attachments per second and MB per second. (3) The same
files attached to resolved tickets of a fake Pyrus (agents' replies, spread over up to 10
tickets): the ticket fetch, then the attachments' download through ``GET
/v4/files/download/{id}`` and conversion; attachments per second and MB per second.
Prints one JSON object.

    .venv/bin/python -m bench.source_sync --issues 500 --attachments 100 --size-kb 40
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from bench.common import machine
from kb_core.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=500)
    parser.add_argument("--attachments", type=int, default=100)
    parser.add_argument("--size-kb", type=int, default=40)
    args = parser.parse_args()

    from kb_core.db import open_database
    from kb_core.index.documents import sync_source
    from kb_core.sources.attachments import AttachmentRules, fetch_attachments
    from kb_core.sources.confluence import ConfluenceClient
    from kb_core.sources.cursor import SyncCursor
    from kb_core.sources.jira import JiraClient, fetch_changes
    from kb_core.sources.pyrus import PyrusClient
    from kb_core.sources.pyrus_attachments import fetch_ticket_attachments
    from kb_core.sources.pyrus_sync import fetch_tickets
    from kb_core.sources.pyrus_tasks import TicketDocumentBuilder
    from kb_fakes.confluence import ConfluenceStore, FakePage, create_confluence_app
    from kb_fakes.documents import docx_bytes, pdf_bytes
    from kb_fakes.jira import JiraStore, create_jira_app
    from kb_fakes.pyrus import BOT_LOGIN, BOT_SECURITY_KEY, PyrusStore, create_pyrus_app
    from kb_fakes.server import ServerThread

    samples = [i for i in JiraStore.from_samples().issues.values() if i.resolution]
    base = datetime(2026, 1, 1, tzinfo=UTC)
    issues = [
        replace(
            samples[n % len(samples)],
            key=f"{('HD', 'INT')[n % 2]}-{1000 + n}",
            updated=base + timedelta(minutes=n),
            comments=list(samples[n % len(samples)].comments) * 2,
        )
        for n in range(args.issues)
    ]
    jira_store = JiraStore(issues)

    line = "Дежурный инженер перезванивает клиенту и фиксирует время реакции."
    lines_per_kb = max(1, 1024 // len(line.encode()))
    page = FakePage(id="7000001", space="SUP", title="Регламенты", body="<p>Файлы</p>")
    confluence_store = ConfluenceStore([page])
    pyrus_store = PyrusStore.from_samples()
    ticket_builder = TicketDocumentBuilder(bot_ids=frozenset({9000, 9001}))
    tickets = sorted(
        task_id
        for task_id, task in pyrus_store.tasks.items()
        if ticket_builder.document(task) is not None
    )[:10]
    pyrus_store.tasks = {task_id: pyrus_store.tasks[task_id] for task_id in tickets}
    total_bytes = 0
    for n in range(args.attachments):
        # PDF: one page of up to ~45 lines; bigger documents are split over paragraphs.
        lines = [f"{n}-{i} {line}" for i in range(lines_per_kb * args.size_kb)]
        data = (
            pdf_bytes(lines[: min(len(lines), 45)] * max(1, len(lines) // 45))
            if n % 2 == 0
            else docx_bytes(f"Документ {n}", lines)
        )
        total_bytes += len(data)
        name = f"doc-{n}.pdf" if n % 2 == 0 else f"doc-{n}.docx"
        confluence_store.attach(page.id, name, data)
        task_id = tickets[n % len(tickets)]
        agent = ticket_builder.resolution(pyrus_store.tasks[task_id])[-1].author_id
        pyrus_store.add_comment(
            task_id,
            {"id": agent, "type": "user"},
            {
                "text": "Файл",
                "channel": {"type": "email"},
                "attachments": [pyrus_store.add_file(name, data)],
            },
        )

    report: dict[str, object] = {"machine": machine(), "issues": args.issues}
    with (
        tempfile.TemporaryDirectory(prefix="kb-bench-") as tmp,
        ServerThread(create_jira_app(jira_store, max_results=50)) as jira,
        ServerThread(create_confluence_app(confluence_store, token="t")) as confluence,
        ServerThread(create_pyrus_app(pyrus_store)) as pyrus,
    ):
        db = open_database(Settings.from_env(None, runtime={"data_dir": Path(tmp)}))
        with JiraClient(jira.url, token="fake-jira-token") as client, db.connection() as conn:
            started = time.perf_counter()
            fetch = fetch_changes(client, ["HD", "INT"], SyncCursor(), now=datetime.now(UTC))
            fetched_s = time.perf_counter() - started
            counts = sync_source(conn, "jira", [i.as_document() for i in fetch.issues])
            seconds = time.perf_counter() - started
        report["jira_full_sync_s"] = round(seconds, 2)
        report["jira_fetch_s"] = round(fetched_s, 2)
        report["jira_issues_per_s"] = round(args.issues / seconds, 1)
        report["jira_counts"] = str(counts)
        report["jira_http_requests"] = sum(jira_store.requests.values())

        with ConfluenceClient(confluence.url, token="t") as client:
            pages = [client.get_page(page.id)]
            result = fetch_attachments(
                client, [p for p in pages if p], {}, None, AttachmentRules(max_chars=1_000_000)
            )
        report["attachments"] = args.attachments
        report["attachments_total_mb"] = round(total_bytes / 1e6, 2)
        report["attachment_avg_kb"] = round(total_bytes / args.attachments / 1024, 1)
        report["attachments_converted"] = len(result.documents)
        report["attachment_errors"] = len(result.errors)
        report["attachments_s"] = round(result.seconds, 2)
        report["attachments_per_s"] = round(result.per_second, 1)
        report["attachment_mb_per_s"] = round(total_bytes / 1e6 / result.seconds, 2)

        with PyrusClient(
            login=BOT_LOGIN,
            security_key=BOT_SECURITY_KEY,
            api_url=f"{pyrus.url}/v4",
            auth_url=f"{pyrus.url}/v4",
        ) as client:
            started = time.perf_counter()
            ticket_fetch = fetch_tickets(
                client, [321], ticket_builder, SyncCursor(), now=datetime.now(UTC)
            )
            report["pyrus_ticket_fetch_s"] = round(time.perf_counter() - started, 2)
            ticket_files = fetch_ticket_attachments(
                client,
                ticket_fetch.documents,
                ticket_fetch.attachments,
                {},
                {d.external_id for d in ticket_fetch.documents},
                AttachmentRules(max_chars=1_000_000),
            )
        report["pyrus_tickets"] = len(ticket_fetch.documents)
        report["pyrus_attachments_converted"] = len(ticket_files.documents)
        report["pyrus_attachment_errors"] = len(ticket_files.errors)
        report["pyrus_attachments_skipped"] = dict(ticket_files.skipped)
        report["pyrus_attachments_mb"] = round(ticket_files.downloaded_bytes / 1e6, 2)
        report["pyrus_attachments_s"] = round(ticket_files.seconds, 2)
        report["pyrus_attachments_per_s"] = round(ticket_files.per_second, 1)
        report["pyrus_attachment_mb_per_s"] = round(
            ticket_files.downloaded_bytes / 1e6 / ticket_files.seconds, 2
        )
    print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main()
