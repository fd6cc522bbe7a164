"""YAML front matter at the top of a Markdown document.

Text handling, not a source's business: the ``files`` source reads ``title`` and ``url``
from it, and the Markdown converter drops it from the body. It lives here so that
``kb_core.text`` needs nothing from ``kb_core.sources`` (sources build on text, never
the other way round).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_FRONT_MATTER = re.compile(r"\A---\s*\n(?P<yaml>.*?)\n---\s*(?:\n|\Z)", re.DOTALL)


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """YAML front matter (or {}) and the body after it; malformed front matter is body."""
    match = _FRONT_MATTER.match(text)
    if match is None:
        return {}, text
    try:
        meta = yaml.safe_load(match["yaml"]) or {}
    except yaml.YAMLError:
        return {}, text
    if not isinstance(meta, dict):
        return {}, text
    return meta, text[match.end() :]
