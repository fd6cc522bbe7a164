"""Text of a ticket's attachment, for the bot's reading of the whole ticket.

One entry point, :func:`extract_text`, so the formats can grow behind it without the bot
changing. Here: plain text (txt, log, csv, tsv, md), JSON and HTML. Binary office
formats (pdf, docx, xlsx) need converters that are not part of this module; they give
None, like any format it cannot read, and the bot keeps the attachment's name only.

Legacy Russian files are often Windows-1251 (or KOI8-R, DOS 866) rather than UTF-8: the
encoding is detected (charset-normalizer, among those) instead of assumed; UTF-16 is read
by its byte-order mark. The caller scrubs the result: attachments carry
personal data as often as comments do.
"""

from __future__ import annotations

import codecs
import json
import re
from pathlib import PurePath

from bs4 import BeautifulSoup
from charset_normalizer import from_bytes

PLAIN_SUFFIXES = frozenset({".txt", ".log", ".csv", ".tsv", ".md"})
HTML_SUFFIXES = frozenset({".html", ".htm"})
JSON_SUFFIXES = frozenset({".json"})
# A text file with NUL bytes near its start is binary under a text name.
_BINARY_PROBE = 8192
_BLANK_LINES = re.compile(r"\n\s*\n+")
_SPACES = re.compile(r"[ \t\r\f\v]+")


# Encodings a Russian helpdesk meets besides UTF-8. Limiting detection to them keeps a
# short Windows-1251 log from being read as some East Asian code page.
_LEGACY_ENCODINGS = ["cp1251", "koi8_r", "cp866", "cp1252"]


def _decode(data: bytes) -> str | None:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            return None
    if b"\x00" in data[:_BINARY_PROBE]:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    best = from_bytes(data, cp_isolation=_LEGACY_ENCODINGS).best()
    return str(best) if best is not None else None


def _tidy(text: str) -> str:
    lines = [_SPACES.sub(" ", line).strip() for line in text.splitlines()]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _html_text(markup: str) -> str:
    soup = BeautifulSoup(markup, "html.parser")
    for element in soup(["script", "style", "head", "noscript"]):
        element.decompose()
    return soup.get_text("\n")


def _json_text(raw: str) -> str:
    """Pretty-printed (one key per line reads better than one long line), or as is."""
    try:
        return json.dumps(json.loads(raw), ensure_ascii=False, indent=1)
    except ValueError:
        return raw


def extract_text(filename: str, data: bytes, max_chars: int) -> str | None:
    """The readable text of an attachment, at most ``max_chars`` characters (cut at a word
    boundary, ending with «…» when cut); None when the format is not supported, the data
    is not text, or nothing readable is left."""
    if max_chars <= 0 or not data:
        return None
    suffix = PurePath(filename.lower()).suffix
    if suffix not in PLAIN_SUFFIXES | HTML_SUFFIXES | JSON_SUFFIXES:
        return None
    raw = _decode(data)
    if raw is None:
        return None
    if suffix in HTML_SUFFIXES:
        raw = _html_text(raw)
    elif suffix in JSON_SUFFIXES:
        raw = _json_text(raw)
    text = _tidy(raw)
    if not text:
        return None
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    space = cut.rfind(" ")
    return (cut[:space] if space > max_chars // 2 else cut).rstrip() + "…"
