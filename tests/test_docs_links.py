"""The README stays short and every relative link of the README and docs/ leads somewhere.

A link is checked against the file system relative to the page it is on; a link with an
anchor (``page.md#section``) also needs a heading of that page whose GitHub anchor is the
fragment. Links to the web are not followed: this checks the repository, offline.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
README_MAX_LINES = 200


LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


def _prose(text: str) -> Iterator[str]:
    """The lines outside fenced code blocks, where links and headings are Markdown."""
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield line


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces → hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = re.sub(r"[^\w\- ]", "", text.lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in _prose(page.read_text("utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        slug = _slug(match.group(2))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def links(page: Path) -> Iterator[str]:
    for line in _prose(page.read_text("utf-8")):
        # Inline code may show link syntax as an example; it is not a link.
        for target in LINK.findall(re.sub(r"`[^`]*`", "", line)):
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, mailto:, …
                yield target


def test_the_readme_stays_short() -> None:
    lines = README.read_text("utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines"


def test_the_readme_opens_with_the_two_commands() -> None:
    # .ci/run runs the README's test command; a newcomer runs the demo.
    head = "\n".join(README.read_text("utf-8").splitlines()[:8])
    assert "make demo" in head and "make test" in head


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_lead_to_files_and_headings(page: Path) -> None:
    broken: list[str] = []
    for target in links(page):
        path_part, _, fragment = target.partition("#")
        path = (page.parent / unquote(path_part)).resolve() if path_part else page
        if not path.exists():
            broken.append(f"{target}: no such file")
            continue
        if fragment and path.suffix == ".md" and unquote(fragment) not in anchors(path):
            broken.append(f"{target}: no heading with this anchor in {path.name}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_the_slugs_follow_github() -> None:
    assert _slug("Jira (`raw_jira_issues`)") == "jira-raw_jira_issues"
    assert _slug("Re-scrubbing: `kb index rescrub`") == "re-scrubbing-kb-index-rescrub"
    assert _slug("Measured (issue 18)") == "measured-issue-18"
    assert _slug('Who is "the bot"') == "who-is-the-bot"
