"""The ``files`` source: a folder of Markdown and HTML articles.

Useful for seeding a knowledge base from exported docs, and the simplest source to run
the whole pipeline on. Markdown files may start with YAML front matter (``title``,
``url``); otherwise the title is the first level-1 heading (Markdown), the ``<title>`` or
first ``<h1>`` (HTML), or the file name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bs4 import BeautifulSoup

from kb_core.errors import KbError
from kb_core.models import SourceDocument
from kb_core.text.front_matter import split_front_matter

SOURCE_NAME = "files"
MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
HTML_SUFFIXES = frozenset({".html", ".htm"})

_H1 = re.compile(r"^#\s+(?P<title>.+?)\s*#*\s*$", re.MULTILINE)


class SourceError(KbError, RuntimeError):
    """A source could not be read; the message says which item and why."""


def _markdown_title(meta: dict[str, Any], body: str) -> str | None:
    if meta.get("title"):
        return str(meta["title"]).strip()
    match = _H1.search(body)
    return match["title"].strip() if match else None


def _html_title(html: str) -> str | None:
    soup = BeautifulSoup(html, "html.parser")
    for tag in (soup.title, soup.find("h1")):
        if tag is not None and tag.get_text(strip=True):
            return str(tag.get_text(" ", strip=True))
    return None


def read_file(root: Path, path: Path) -> SourceDocument:
    """One file as a SourceDocument (external id = path relative to ``root``)."""
    try:
        text = path.read_text("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path}: not UTF-8 text ({exc})") from exc
    text = text.replace("\r\n", "\n").lstrip("\ufeff")
    suffix = path.suffix.lower()
    meta: dict[str, Any] = {}
    if suffix in MARKDOWN_SUFFIXES:
        meta, body = split_front_matter(text)
        title = _markdown_title(meta, body)
        raw_format = "markdown"
    else:
        title = _html_title(text)
        raw_format = "html"
    modified = datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)
    return SourceDocument(
        source=SOURCE_NAME,
        external_id=path.relative_to(root).as_posix(),
        title=title or path.stem.replace("_", " ").replace("-", " "),
        raw_format=raw_format,
        raw_body=text,
        url=str(meta["url"]) if meta.get("url") else None,
        updated_at=modified,
        metadata={k: v for k, v in meta.items() if k not in {"title", "url"}},
    )


def iter_files(root: Path) -> Iterator[SourceDocument]:
    """Every Markdown/HTML file under ``root`` (recursively, hidden files skipped)."""
    if not root.is_dir():
        raise SourceError(f"files source folder not found: {root}")
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.is_file() and path.suffix.lower() in MARKDOWN_SUFFIXES | HTML_SUFFIXES:
            yield read_file(root, path)
