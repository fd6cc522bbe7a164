"""Confluence storage format → Markdown: one golden file per element, and no lost text.

Golden files: tests/golden/confluence/NAME.xml → NAME.md. After an intended change,
regenerate with UPDATE_GOLDEN=1 and review the diff.
"""

import json
import os
import re
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from kb_core.settings import PROJECT_ROOT
from kb_core.text.confluence import confluence_to_markdown
from tests.conftest import run_kb

GOLDEN = Path(__file__).parent / "golden" / "confluence"
CASES = sorted(p.stem for p in GOLDEN.glob("*.xml"))
SAMPLES = PROJECT_ROOT / "samples" / "confluence"

# Elements whose text is not page content by design (see kb_core.text.confluence).
NOT_CONTENT = (
    "ac:parameter",
    "ac:placeholder",
    "ac:task-id",
    "ac:task-uuid",
    "ac:task-status",
    "ri:user",
)
DROPPED_MACROS = ("toc", "children", "contentbylabel", "pagetree", "anchor", "jira")
_WORD = re.compile(r"\w+", re.UNICODE)


@pytest.mark.parametrize("name", CASES)
def test_golden(name: str):
    source = (GOLDEN / f"{name}.xml").read_text("utf-8")
    expected_path = GOLDEN / f"{name}.md"
    actual = confluence_to_markdown(source)
    if os.environ.get("UPDATE_GOLDEN") == "1" or not expected_path.exists():
        expected_path.write_text(actual, "utf-8")
    assert actual == expected_path.read_text("utf-8")


def _content_words(storage: str) -> set[str]:
    text = re.sub(
        r"<!\[CDATA\[(.*?)\]\]>", lambda m: m[1].replace("<", "&lt;"), storage, flags=re.S
    )
    soup = BeautifulSoup(text, "html.parser")
    for tag in soup.find_all(NOT_CONTENT):
        tag.decompose()
    for tag in soup.find_all(["ac:structured-macro", "ac:macro"]):
        if tag.get("ac:name") in DROPPED_MACROS:
            tag.decompose()
    return set(_WORD.findall(soup.get_text(" ")))


def _all_sources() -> list[Path]:
    return sorted(GOLDEN.glob("*.xml")) + sorted(SAMPLES.glob("*/*.xml"))


@pytest.mark.parametrize("path", _all_sources(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_no_body_text_is_lost(path: Path):
    storage = path.read_text("utf-8")
    output_words = set(_WORD.findall(confluence_to_markdown(storage)))
    missing = _content_words(storage) - output_words
    assert not missing, f"lost words: {sorted(missing)[:20]}"


def test_user_mentions_never_leak_identifiers():
    md = confluence_to_markdown((GOLDEN / "user-mentions.xml").read_text("utf-8"))
    assert "8a7f808a6b1c2d3e" not in md and "support.lead" not in md
    assert "5b10ac8d82e05b22cc7d4ef5" not in md


@pytest.mark.parametrize(
    "broken",
    [
        "<p>незакрытый абзац <strong>жирный",
        "<ac:structured-macro ac:name='code'><ac:plain-text-body><![CDATA[нет конца",
        "</p></ac:link>лишние закрывающие",
        "<ac:task-list><ac:task><ac:task-body>без статуса</ac:task-body></ac:task>",
        "",
        "просто текст",
    ],
)
def test_never_crashes_on_malformed_fragments(broken: str):
    markdown = confluence_to_markdown(broken)
    assert isinstance(markdown, str)
    for word in ("незакрытый", "жирный", "лишние", "без", "просто"):
        if word in broken:
            assert word in markdown


@pytest.mark.integration  # starts a process
def test_cli_converts_stdin():
    source = (GOLDEN / "code.xml").read_text("utf-8")
    result = run_kb("convert", "confluence", stdin=source)
    assert result.returncode == 0, result.stderr
    assert result.stdout == (GOLDEN / "code.md").read_text("utf-8")


def test_sample_pages_manifest_matches_files():
    manifest = json.loads((SAMPLES / "pages.json").read_text("utf-8"))
    assert len(manifest) >= 40
    for page in manifest:
        assert (SAMPLES / page["file"]).exists()
