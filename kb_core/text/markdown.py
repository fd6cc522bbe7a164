"""Conversion of source bodies to clean, structure-preserving Markdown.

HTML goes through markdownify (ATX headings, fenced code with its language, tables kept);
Markdown is normalised. Other formats (Confluence storage format, Jira issues) add their
own converters on top of :class:`KbMarkdownConverter`; ``kb_core.text.formats`` picks
the converter for a document's raw format.
"""

from __future__ import annotations

import re
from typing import Any

from bs4 import BeautifulSoup, Tag
from markdownify import MarkdownConverter

from kb_core.text.fences import next_fence

_DROP_TAGS = ("script", "style", "noscript", "template", "head")
_INNER_SPACES = re.compile(r"(?<=\S) {2,}(?=\S)")
_LANGUAGE_CLASS = re.compile(r"^(?:language|lang|brush)[-:](?P<lang>[\w+#.-]+)$")


def _code_language(el: Tag) -> str:
    """Language of a <pre> block from its own or its <code> child's class."""
    candidates = [el, *el.find_all("code", limit=1)]
    for node in candidates:
        classes: Any = node.get("class") or []
        for cls in classes if isinstance(classes, list) else [classes]:
            match = _LANGUAGE_CLASS.match(str(cls))
            if match:
                return match["lang"]
        lang = node.get("data-lang") or node.get("data-language")
        if lang:
            return str(lang)
    return ""


class KbMarkdownConverter(MarkdownConverter):
    """markdownify with the project's defaults."""

    def __init__(self, **options: Any) -> None:
        defaults: dict[str, Any] = {
            "heading_style": "ATX",
            "bullets": "-",
            "code_language_callback": _code_language,
            "escape_underscores": False,
            "escape_asterisks": False,
        }
        super().__init__(**{**defaults, **options})


def normalize_markdown(markdown: str) -> str:
    """Trailing spaces and runs of blank lines removed outside code fences."""
    out: list[str] = []
    fence: str | None = None
    blank_run = 0
    for line in markdown.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        in_code, fence = fence is not None, next_fence(fence, line)
        if in_code:
            out.append(line)
            continue
        # Outside code: no-break spaces become spaces, and runs of spaces inside a line
        # (left by removed inline elements) collapse; indentation is kept.
        line = _INNER_SPACES.sub(" ", line.replace("\xa0", " ").rstrip())
        blank_run = blank_run + 1 if not line else 0
        if blank_run <= 1:
            out.append(line)
    return "\n".join(out).strip("\n") + "\n"


def html_to_markdown(html: str) -> str:
    """HTML as normalised Markdown; scripts, styles and the ``<head>`` dropped."""
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup.find_all(_DROP_TAGS):
        tag.decompose()
    root = soup.body or soup
    return normalize_markdown(KbMarkdownConverter().convert_soup(root))
