"""The agent console in a real browser: Debian's headless Chromium driven by Playwright.

An engineer types a question, sees the answer and its sources, switches the search mode
in the folded settings, and reports a wrong answer with the right one, which files an
«Актуализация RAG» task in the fake Pyrus. The run leaves a screenshot in
var/screenshots/console.png.

CI installs Chromium and sets KB_REQUIRE_BROWSER=1, so there a missing browser fails the
test; on a developer machine without it the test is skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest

from bot_api.app import create_app
from kb_core.db import Database
from kb_core.settings import PROJECT_ROOT, Settings
from kb_fakes.server import ServerThread
from tests.test_console import QUESTION, console_settings, pyrus  # noqa: F401  (fixtures)

# Every test here starts from the sample articles, ingested once per session.
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.from_samples]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying hosts this closed network
# refuses; as root it needs --no-sandbox.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = PROJECT_ROOT / "var" / "screenshots" / "console.png"


@pytest.fixture
def browser():  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        if os.environ.get("KB_REQUIRE_BROWSER") == "1":
            pytest.fail(f"Chromium not found at {CHROMIUM}")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def test_engineer_asks_switches_mode_and_reports_a_wrong_answer(
    browser,  # type: ignore[no-untyped-def]
    console_settings: Settings,  # noqa: F811
    pyrus: ServerThread,  # noqa: F811
    database: Database,
):
    with ServerThread(create_app(console_settings), lifespan="on") as server:
        context = browser.new_context(
            http_credentials={"username": "agent", "password": "s3cret"},
            locale="ru-RU",
            viewport={"width": 1100, "height": 900},
        )
        page = context.new_page()
        page.goto(server.url)
        assert page.title() == "База знаний поддержки"

        page.fill("#q", QUESTION)
        page.click("#ask")
        page.wait_for_selector("#sources li")
        first = page.locator("#sources li h3").first.inner_text()
        assert "шаблон" in first.lower() or "печат" in first.lower()
        assert page.locator("#sources mark").count() > 0
        assert page.locator("#draft").inner_text().strip()
        assert "итог" in page.locator("#sources .scores").first.inner_text()

        page.click("details summary")
        page.select_option("#mode", "lexical")
        page.click("#ask")
        page.wait_for_selector('#result[data-mode="lexical"]')
        scores = page.locator("#sources .scores").first.inner_text()
        assert "векторная —" in scores  # no vector half in lexical mode

        page.click("#fb-wrong")
        page.fill("#fb-text", "Шаблон меняется в разделе «Настройки → Печатные формы».")
        page.click("#fb-send")
        page.wait_for_function(
            "document.getElementById('fb-message').textContent.includes('отправлено')"
        )
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        context.close()

    created = httpx.get(f"{pyrus.url}/_admin/created").json()
    assert len(created) == 1 and "Печатные формы" in str(created[0])
    with database.connection() as conn:
        verdicts = conn.execute("SELECT verdict, engineer FROM console_feedback").fetchall()
    assert verdicts == [("wrong", "agent")]
    assert SCREENSHOT.stat().st_size > 10_000


def test_knowledge_owner_edits_synonyms_and_scopes_a_search_in_the_page(
    browser,  # type: ignore[no-untyped-def]
    console_settings: Settings,  # noqa: F811
    pyrus: ServerThread,  # noqa: F811
    database: Database,
    tmp_path: Path,
):
    """The shared password is the demo's operator (every role): the owner's tools show."""
    synonyms = tmp_path / "synonyms.yaml"
    shutil.copy(console_settings.search.synonyms_path, synonyms)
    settings = console_settings.with_overrides(search={"synonyms_path": synonyms})
    with ServerThread(create_app(settings), lifespan="on") as server:
        context = browser.new_context(
            http_credentials={"username": "owner", "password": "s3cret"}, locale="ru-RU"
        )
        page = context.new_page()
        page.goto(server.url)
        page.fill("#synonyms-text", "впн, vpn\nкасса, ккт")
        page.click("#synonyms-save")
        page.wait_for_function(
            "document.getElementById('synonyms-message').textContent.includes('сохранены')"
        )
        assert "- [касса, ккт]" in synonyms.read_text(encoding="utf-8")
        # a dictionary the loader refuses: the reason is shown, the file is unchanged
        page.fill("#synonyms-text", "впн, vpn\nvpn, ви пи эн")
        page.click("#synonyms-save")
        page.wait_for_function(
            "document.getElementById('synonyms-message').textContent.includes('Не удалось')"
        )
        assert "- [касса, ккт]" in synonyms.read_text(encoding="utf-8")
        # approving a task that is not a correction is refused with the reason
        page.fill("#approve-task", "1")
        page.click("#approve")
        page.wait_for_function(
            "document.getElementById('approve-message').textContent.includes('Не удалось')"
        )
        # a scope no document is in: nothing found; the scope stays in the form
        page.fill("#q", QUESTION)
        page.click("details summary")
        page.fill("#source", "jira")
        page.click("#ask")
        page.wait_for_selector("#result")
        assert page.locator("#no-sources").count() == 1
        assert page.input_value("#source") == "jira"
        context.close()
