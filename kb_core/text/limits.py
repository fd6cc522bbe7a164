"""Limits on text that enters from outside: control characters, size, and 64-bit ids.

Everything a customer, an agent or a client sends passes here before it is stored or
processed: PostgreSQL refuses NUL in text and JSON (the insert fails after the comment
was posted), spaCy refuses texts over its ``max_length``, and a bigint column refuses ids
past 2^63-1. Each limit is checked where text enters, so a bad value is a clear 400 (or a
clipped text), never a failure deep inside.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)

# C0 and C1 controls except tab, line feed and carriage return, plus the Unicode
# non-characters a database or a JSON parser may refuse (lone surrogates among them).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff\ud800-\udfff]")


def clean_text(text: str) -> str:
    """``text`` without NUL and other control characters (tab and newlines stay)."""
    return _CONTROL.sub("", text)


def has_control(text: str) -> bool:
    return _CONTROL.search(text) is not None


def clean_tree(value: Any) -> Any:
    """A JSON-like value with every string cleaned (for jsonb columns)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): clean_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_tree(v) for v in value]
    return value


def clip(text: str, max_chars: int) -> str:
    """At most ``max_chars`` characters, cut at a word boundary when one is near."""
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    space = cut.rfind(" ", max(0, max_chars - 200))
    return cut[:space] if space > 0 else cut


def windows(text: str, size: int) -> Iterator[str]:
    """Consecutive pieces of at most ``size`` characters that join back to ``text``,
    cut after a newline or a space when there is one in the last tenth of a piece, so a
    name or a number is rarely split (for models with an input limit, like spaCy)."""
    start = 0
    while start < len(text):
        end = min(len(text), start + size)
        if end < len(text):
            floor = start + size - max(1, size // 10)
            for sep in ("\n", " "):
                at = text.rfind(sep, floor, end)
                if at > start:
                    end = at + 1
                    break
        yield text[start:end]
        start = end


def is_int64(value: int) -> bool:
    return INT64_MIN <= value <= INT64_MAX


_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def json_depth_exceeds(body: bytes | str, limit: int) -> bool:
    """Whether a JSON document nests deeper than ``limit`` arrays/objects, found by a
    scan of the raw text (strings skipped) before any parser recurses into it."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    depth = 0
    for found in _BRACKET.finditer(_JSON_STRING.sub('""', text)):
        if found.group() in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False
