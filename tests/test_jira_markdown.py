"""Jira wiki markup and ADF → Markdown: one golden file per element, no names leak.

Golden files: tests/golden/jira/NAME.txt (wiki markup) or NAME.json (ADF) → NAME.md.
After an intended change, regenerate with UPDATE_GOLDEN=1 and review the diff.
"""

import json
import os
from pathlib import Path

import pytest

from kb_core.text.formats import to_markdown
from kb_core.text.jira import (
    adf_to_markdown,
    issue_to_markdown,
    wiki_to_markdown,
)

GOLDEN = Path(__file__).parent / "golden" / "jira"
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.suffix in (".txt", ".json"))


def _convert(path: Path) -> str:
    text = path.read_text("utf-8")
    return adf_to_markdown(json.loads(text)) if path.suffix == ".json" else wiki_to_markdown(text)


@pytest.mark.parametrize("name", CASES)
def test_golden(name: str):
    source = GOLDEN / name
    expected_path = source.with_suffix(".md")
    actual = _convert(source)
    if os.environ.get("UPDATE_GOLDEN") == "1" or not expected_path.exists():
        expected_path.write_text(actual, "utf-8")
    assert actual == expected_path.read_text("utf-8")


def test_every_element_has_a_golden_case():
    names = {p.stem for p in GOLDEN.iterdir()}
    for element in (
        "headings",
        "text-effects",
        "code",
        "noformat",
        "panel",
        "admonitions",
        "quote",
        "table",
        "lists",
        "mentions",
        "issue-links",
        "links",
        "images",
        "adf-marks",
        "adf-lists",
        "adf-code-panel",
        "adf-table",
        "adf-mentions-cards",
    ):
        assert element in names, element


def test_mentions_never_leak_a_user():
    for name in ("mentions.txt", "adf-mentions-cards.json"):
        markdown = _convert(GOLDEN / name)
        for leaked in ("support.l2", "ivan.petrov", "Иван", "Петров", "5b10ac8d"):
            assert leaked not in markdown, (name, leaked)
        assert "@пользователь" in markdown


def test_issue_document_keeps_question_resolution_and_roles():
    body = {
        "key": "HD-1",
        "summary": "Письма в спаме",
        "description": "Письма попадают в *спам*.",
        "resolution": "Решено",
        "comments": [
            {"role": "agent", "body": "Добавьте отправителя в белый список."},
            {"role": "reporter", "body": "Помогло."},
            {"role": "agent", "body": ""},
        ],
    }
    markdown = to_markdown("jira_issue", json.dumps(body, ensure_ascii=False))
    assert markdown.startswith("# HD-1: Письма в спаме\n")
    question, _, resolution = markdown.partition("## Решение")
    assert "Письма попадают в **спам**." in question
    assert "Резолюция: Решено." in resolution
    assert "**Специалист:**\n\nДобавьте отправителя в белый список." in resolution
    assert "**Заявитель:**\n\nПомогло." in resolution
    assert resolution.count("**Специалист:**") == 1  # an empty comment is left out


def test_issue_document_accepts_adf_bodies():
    adf = {
        "type": "doc",
        "content": [{"type": "paragraph", "content": [{"type": "text", "text": "Вопрос ADF"}]}],
    }
    body = {"key": "X-1", "summary": "S", "description": adf, "resolution": None, "comments": []}
    assert "Вопрос ADF" in issue_to_markdown(json.dumps(body))
