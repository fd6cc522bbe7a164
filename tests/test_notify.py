"""Messenger notifications and printed reports, over real HTTP against the fake webhook
and the fake Gotenberg (kb_fakes/messenger.py, kb_fakes/printer.py); no mocks. Back-off
pauses are recorded instead of slept, so retries cost no time."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr

from kb_core.notify import (
    KINDS,
    Messenger,
    PrintError,
    PrintService,
    digest_text,
    promotion_blocked_text,
    reports_dir,
    run_failure_text,
    title,
    weekly_report_text,
    write_report,
)
from kb_core.settings import Settings
from kb_core.texts import Texts, load_texts
from kb_fakes.messenger import FAKE_WEBHOOK_TOKEN, create_messenger_app, webhook_url
from kb_fakes.printer import CONVERT_PATH, create_printer_app
from kb_fakes.server import ServerThread, free_port

TEXT = 'Сводка за 2026-05-12: "кавычки", \\ и перенос\nстроки'
PAGE = """<!doctype html><html><head><title>Отчёт</title><style>h1 { color: red }</style>
</head><body><h1>Эффект бота &amp; итоги</h1><p>Заявок: 42</p><p>Сэкономлено: 3 ч</p>
</body></html>"""


@dataclass
class Fake:
    server: ServerThread
    waits: list[float] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    def fault(self, **spec: Any) -> None:
        httpx.post(f"{self.url}/_admin/faults", json=spec).raise_for_status()

    def admin(self, what: str) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = httpx.get(f"{self.url}/_admin/{what}").json()
        return answer

    def statuses(self) -> list[int]:
        return [int(entry["status"]) for entry in self.admin("requests")]


@pytest.fixture(scope="module")
def messenger_server() -> Iterator[ServerThread]:
    with ServerThread(create_messenger_app()) as server:
        yield server


@pytest.fixture(scope="module")
def printer_server() -> Iterator[ServerThread]:
    with ServerThread(create_printer_app()) as server:
        yield server


@pytest.fixture
def hook(messenger_server: ServerThread) -> Fake:
    httpx.delete(f"{messenger_server.url}/_admin/faults").raise_for_status()
    httpx.delete(f"{messenger_server.url}/_admin/messages").raise_for_status()
    return Fake(messenger_server)


@pytest.fixture
def printer(printer_server: ServerThread) -> Fake:
    httpx.delete(f"{printer_server.url}/_admin/faults").raise_for_status()
    httpx.delete(f"{printer_server.url}/_admin/requests").raise_for_status()
    return Fake(printer_server)


def messenger(fake: Fake, template: str | None = None, url: str | None = None) -> Messenger:
    """A client of the fake with tiny back-off whose pauses are recorded, not slept."""
    options: dict[str, Any] = {"backoff_initial_s": 0.01, "sleep": fake.waits.append}
    if template is not None:
        options["template"] = template
    return Messenger(url or webhook_url(fake.url), **options)


def print_service(fake: Fake, path: str = CONVERT_PATH) -> PrintService:
    return PrintService(fake.url + path, 5.0, backoff_initial_s=0.01, sleep=fake.waits.append)


def counted(kind: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value("kb_notifications_total", {"kind": kind, "outcome": outcome})
    return value or 0.0


# -- payload templates -----------------------------------------------------------------------


def test_default_template_posts_the_text(hook: Fake) -> None:
    before = counted("digest", "sent")
    with messenger(hook) as client:
        assert client.send("digest", "Сводка", TEXT) is True
    assert hook.admin("messages") == [{"text": TEXT}]
    assert counted("digest", "sent") == before + 1


def test_custom_template_mattermost_style(hook: Fake) -> None:
    template = (
        '{"text": {{ ("**" ~ title ~ "**\\n" ~ text) | tojson }}, "username": "kb",'
        ' "props": {"kind": {{ kind | tojson }}, "url": {{ url | tojson }}}}'
    )
    with messenger(hook, template) as client:
        assert client.send("run_failure", "Сбой", TEXT, url="https://dagster/runs/1?a=<b>")
        assert client.send("digest", "Сводка", "без ссылки")
    first, second = hook.admin("messages")
    assert first == {
        "text": f"**Сбой**\n{TEXT}",
        "username": "kb",
        "props": {"kind": "run_failure", "url": "https://dagster/runs/1?a=<b>"},
    }
    assert second["props"] == {"kind": "digest", "url": None}


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ('{"text": {{ text | tojson }}', "JSON"),  # unbalanced braces of the JSON
        ('{"text": {{ text | tojson }', "Jinja2"),  # a Jinja2 syntax error
        ('{"text": {{ body | tojson }}}', "Jinja2"),  # an unknown variable
        ('{"text": "{{ text }}"}', "tojson"),  # works for plain words, not for quotes
        ("[{{ text | tojson }}]", "object"),  # JSON, but not an object
    ],
)
def test_bad_template_is_rejected_at_construction(hook: Fake, template: str, reason: str) -> None:
    with pytest.raises(ValueError, match="KB_NOTIFY_PAYLOAD_TEMPLATE") as error:
        messenger(hook, template)
    assert reason in str(error.value)
    settings = Settings.defaults(
        notify={"webhook_url": SecretStr(webhook_url(hook.url)), "payload_template": template}
    )
    with pytest.raises(ValueError, match="KB_NOTIFY_PAYLOAD_TEMPLATE"):
        Messenger.from_settings(settings)
    assert hook.admin("requests") == []


def test_from_settings(hook: Fake) -> None:
    assert Messenger.from_settings(Settings.defaults(notify={"webhook_url": None})) is None
    settings = Settings.defaults(notify={"webhook_url": SecretStr(webhook_url(hook.url))})
    client = Messenger.from_settings(settings)
    assert client is not None
    with client:
        assert client.send("weekly_report", "Отчёт", "готов")
    assert hook.admin("messages") == [{"text": "готов"}]
    with pytest.raises(ValueError, match="KB_NOTIFY_WEBHOOK_URL"):
        Messenger("ftp://example.org/hooks/x")


# -- retries and failures ----------------------------------------------------------------------


def test_retries_429_honouring_retry_after(hook: Fake) -> None:
    hook.fault(status=429, retry_after=7, count=1)
    with messenger(hook) as client:
        assert client.send("digest", "Сводка", TEXT) is True
    assert hook.statuses() == [429, 200]
    assert hook.waits == [7.0]  # the pause the server asked for (recorded, not slept)
    assert hook.admin("messages") == [{"text": TEXT}]


def test_retries_5xx_then_succeeds(hook: Fake) -> None:
    hook.fault(status=500, count=2)
    with messenger(hook) as client:
        assert client.send("promotion_blocked", "Индекс", "текст") is True
    assert hook.statuses() == [500, 500, 200]
    assert len(hook.waits) == 2
    assert len(hook.admin("messages")) == 1


def test_persistent_failure_returns_false_and_logs_no_secrets(
    hook: Fake, caplog: pytest.LogCaptureFixture
) -> None:
    hook.fault(status=503, count=10)
    before = counted("run_failure", "failed")
    with caplog.at_level(logging.WARNING), messenger(hook) as client:
        assert client.send("run_failure", "Сбой", "секретный текст заявки") is False
    assert hook.statuses() == [503, 503, 503]  # three attempts, then it gives up
    assert hook.admin("messages") == []
    assert counted("run_failure", "failed") == before + 1
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "503" in errors[0].getMessage()
    assert "секретный текст" not in caplog.text
    assert FAKE_WEBHOOK_TOKEN not in caplog.text


def test_client_error_is_not_retried(hook: Fake) -> None:
    with messenger(hook, url=webhook_url(hook.url, "wrong-token")) as client:
        assert client.send("digest", "Сводка", TEXT) is False
    assert hook.statuses() == [404]
    assert hook.waits == []


def test_unreachable_messenger_returns_false(hook: Fake) -> None:
    port = free_port()  # nobody listens on it
    with messenger(hook, url=f"http://127.0.0.1:{port}/hooks/x") as client:
        assert client.send("digest", "Сводка", TEXT) is False
    assert len(hook.waits) == 2  # network errors are retried too


def test_render_failure_at_send_returns_false(hook: Fake) -> None:
    # Passes the start-up check, but a value makes the rendered JSON invalid at send time.
    template = '{"text": {{ text | tojson }}{% if url == "bad" %},{% endif %}}'
    with messenger(hook, template) as client:
        assert client.send("digest", "Сводка", TEXT, url="bad") is False
        assert client.send("digest", "Сводка", TEXT) is True
    assert hook.statuses() == [200]


# -- printing ----------------------------------------------------------------------------------


def test_print_to_pdf(printer: Fake) -> None:
    with print_service(printer) as service:
        pdf = service.to_pdf(PAGE)
    assert pdf.startswith(b"%PDF") and b"%%EOF" in pdf[-64:]
    (entry,) = printer.admin("requests")
    assert entry["files"] == ["index.html"]
    assert entry["text"] == "Эффект бота & итоги\nЗаявок: 42\nСэкономлено: 3 ч"


def test_print_retries_then_succeeds(printer: Fake) -> None:
    printer.fault(status=503, count=1)
    printer.fault(status=429, retry_after=2, count=1)
    with print_service(printer) as service:
        assert service.to_pdf(PAGE).startswith(b"%PDF")
    assert printer.statuses() == [503, 429, 200]
    assert len(printer.waits) == 2 and printer.waits[1] == 2.0


def test_print_errors_are_clear(printer: Fake) -> None:
    printer.fault(status=200, count=1)  # a 200 that is JSON, not a PDF
    with print_service(printer) as service, pytest.raises(PrintError, match="not with a PDF"):
        service.to_pdf(PAGE)
    with (
        print_service(printer, "/forms/chromium/convert/url") as service,
        pytest.raises(PrintError, match="KB_PRINT_SERVICE_URL"),
    ):
        service.to_pdf(PAGE)
    assert printer.waits == []  # neither is worth a retry
    missing = httpx.post(
        printer.url + CONVERT_PATH, files={"files": ("report.html", b"<p>x</p>", "text/html")}
    )
    assert missing.status_code == 400 and "index.html" in missing.text


def test_write_report_with_pdf(printer: Fake, tmp_path: Path) -> None:
    with print_service(printer) as service:
        files = write_report(PAGE, tmp_path / "reports", "effect-2026-W19", service)
    assert files.error is None
    assert files.html_path == tmp_path / "reports" / "effect-2026-W19.html"
    assert files.html_path.read_text(encoding="utf-8") == PAGE
    assert files.pdf_path is not None and files.pdf_path.read_bytes().startswith(b"%PDF")


def test_write_report_falls_back_to_html(printer: Fake, tmp_path: Path) -> None:
    stale = tmp_path / "weekly.pdf"
    stale.write_bytes(b"%PDF-1.4 last week's")
    printer.fault(status=503, count=10)
    with print_service(printer) as service:
        files = write_report(PAGE, tmp_path, "weekly", service)
    assert files.html_path.read_text(encoding="utf-8") == PAGE
    assert files.pdf_path is None
    assert files.error is not None and "503" in files.error
    assert not stale.exists()  # no PDF that contradicts the fresh HTML
    assert printer.statuses() == [503, 503, 503]

    files = write_report(PAGE, tmp_path, "weekly", None)  # no print service configured
    assert (files.html_path.exists(), files.pdf_path, files.error) == (True, None, None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weekly.html"]
    with pytest.raises(ValueError, match="stem"):
        write_report(PAGE, tmp_path, "../escape", None)


def test_print_service_from_settings(tmp_path: Path) -> None:
    settings = Settings.defaults(runtime={"data_dir": tmp_path}, notify={"print_service_url": None})
    assert PrintService.from_settings(settings) is None
    assert reports_dir(settings) == tmp_path / "reports"
    configured = Settings.defaults(
        notify={"print_service_url": "http://gotenberg:3000" + CONVERT_PATH}
    )
    service = PrintService.from_settings(configured)
    assert service is not None
    service.close()
    assert reports_dir(Settings.defaults(effect={"reports_dir": tmp_path})) == tmp_path


# -- message texts -----------------------------------------------------------------------------


def test_digest_text_has_the_numbers() -> None:
    per_category = [
        {"category": "Почта", "tickets": 3, "bot_answered": 1},
        {"category": "Доступ", "tickets": 17, "bot_answered": 12},
        {"category": "Интеграции", "tickets": 9, "bot_answered": 4},
    ]
    totals = {"tickets": 29, "bot_answered": 17, "accepted": 11, "edited": 4, "minutes_saved": 130}
    text = digest_text("2026-05-12", totals, per_category)
    for expected in ("2026-05-12", "29", "17", "59 %", "11", "4", "130"):
        assert expected in text
    lines = text.splitlines()
    assert lines.index(next(x for x in lines if "Доступ" in x)) < lines.index(
        next(x for x in lines if "Почта" in x)
    )  # busiest category first
    assert "12" in next(x for x in lines if "Доступ" in x)
    empty = digest_text("2026-05-13", {"minutes_saved": 12.5}, [])
    assert "0 %" in empty and "12,5" in empty
    assert load_texts().notify_digest_categories not in empty


def test_other_message_texts() -> None:
    text = run_failure_text("kb_daily", "ab12cd34", ["embedded_chunks", "promoted_index"], "boom")
    for expected in ("kb_daily", "ab12cd34", "embedded_chunks, promoted_index", "boom"):
        assert expected in text
    no_steps = run_failure_text("kb_daily", "r1", [], "x" * 2000)
    assert load_texts().notify_run_failure_no_steps in no_steps and len(no_steps) < 800
    blocked = promotion_blocked_text(42, ["hit@5 0.71 < 0.80", "ndcg@10 упал на 6 %"])
    assert "42" in blocked and "hit@5 0.71 < 0.80" in blocked and "ndcg@10" in blocked
    weekly = weekly_report_text("2026-W19", "/data/reports/effect-2026-W19.pdf")
    assert "2026-W19" in weekly and "/data/reports/effect-2026-W19.pdf" in weekly
    assert {kind: bool(title(kind)) for kind in KINDS} == dict.fromkeys(KINDS, True)
    with pytest.raises(ValueError, match="unknown notification kind"):
        title("birthday")


def test_notify_texts_are_configurable(tmp_path: Path) -> None:
    override = tmp_path / "texts.yaml"
    override.write_text('notify_weekly_report: "Отчёт {week}: {location}"\n', encoding="utf-8")
    texts = load_texts(override)
    assert weekly_report_text("W19", "там", texts) == "Отчёт W19: там"
    override.write_text('notify_weekly_report: "Отчёт {link}"\n', encoding="utf-8")
    with pytest.raises(ValueError, match="link"):
        load_texts(override)
    notify_keys = [name for name in Texts.model_fields if name.startswith("notify_")]
    assert len(notify_keys) >= 10
    assert all(getattr(load_texts(), name).strip() for name in notify_keys)
