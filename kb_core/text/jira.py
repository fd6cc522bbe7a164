"""Jira text → Markdown: wiki markup (Server/Data Center, API v2) and ADF (Cloud, API v3).

Jira issues reach the knowledge base as question + resolution documents; their
description and comments are in one of two formats. Both converters follow the
Confluence converter's rules so every source reads alike: code/noformat → fenced code
with its language; panels and info/note/warning/tip → quoted blocks labelled with their
kind; tables → Markdown tables; nested lists kept; user mentions → a neutral placeholder
(never a name or an account id); issue links → the issue key; images and attachments →
their file names; colours and other pure styling → their text. Anything unrecognised
keeps its text.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from kb_core.text.confluence import IMAGE_LABEL, PANEL_LABELS, USER_PLACEHOLDER
from kb_core.text.markdown import normalize_markdown

ISSUE_KEY = re.compile(r"^[A-Z][A-Z0-9_]+-\d+$")
_BROWSE = re.compile(r"/browse/([A-Z][A-Z0-9_]+-\d+)(?:[?#].*)?$")

# -- wiki markup: blocks -----------------------------------------------------------------
_HEADING = re.compile(r"^\s*h([1-6])\.\s+(.*)$")
_LIST_ITEM = re.compile(r"^\s*([*#-]+)\s+(.*)$")
_RULE = re.compile(r"^\s*-{4,}\s*$")
_BQ = re.compile(r"^\s*bq\.\s+(.*)$")
_BLOCK_OPEN = re.compile(
    r"^\s*\{(code|noformat|panel|quote|info|note|warning|tip)(?::([^}]*))?\}(.*)$", re.I
)

# -- wiki markup: inline -----------------------------------------------------------------
_MONO = re.compile(r"\{\{(.+?)\}\}")
_LINK = re.compile(r"\[([^\[\]\n]*?)\]")
_IMAGE = re.compile(r"!([^!\s|][^!|\n]*?)(?:\|[^!\n]*)?!")
_COLOR = re.compile(r"\{color(?::[^}]*)?\}", re.I)
_ANCHOR = re.compile(r"\{anchor:[^}]*\}", re.I)
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w-])-(?=[^\s-])([^-\n]+?)(?<=[^\s-])-(?![\w-])")
_UNDERLINE = re.compile(r"(?<![\w+])\+(?=\S)([^+\n]+?)(?<=\S)\+(?![\w+])")
_CITE = re.compile(r"\?\?(?=\S)(.+?)(?<=\S)\?\?")
_SUPSUB = re.compile(r"(?<![\^~])([\^~])(?=\S)([^\^~\s][^\^~\n]*?)(?<=\S)\1(?![\w^~])")
_LIST_LINE = re.compile(r"^\s*(?:-|1\.) ")
_PROTECTED = re.compile("\x00(\\d+)\x00")


def _param_map(params: str | None) -> tuple[str, dict[str, str]]:
    """A block macro's first bare parameter (code language) and its name=value pairs."""
    bare = ""
    named: dict[str, str] = {}
    for part in (params or "").split("|"):
        key, eq, value = part.partition("=")
        if eq:
            named[key.strip().lower()] = value.strip()
        elif part.strip() and not bare:
            bare = part.strip()
    return bare, named


def _file_name(target: str) -> str:
    """An image's file name (a URL's last path segment)."""
    return posixpath.basename(urlparse(target.strip()).path) or target.strip()


def _link(inner: str) -> str:
    """Markdown for the inside of a wiki ``[...]`` link."""
    text, bar, target = inner.rpartition("|") if "|" in inner else ("", "", inner)
    text, target = text.strip(), target.strip()
    if target.startswith("~"):
        return USER_PLACEHOLDER
    if target.startswith("^"):  # an attachment of the issue
        return text or target[1:]
    if target.startswith("#"):  # an anchor on the same page
        return text or target[1:]
    key = target if ISSUE_KEY.match(target) else None
    if key is None and (browse := _BROWSE.search(target)):
        key = browse[1]
    if key is not None:
        return f"{text} ({key})" if text and text != key else key
    if re.match(r"^(https?|mailto|ftp):", target, re.I):
        return f"[{text}]({target})" if text else f"<{target}>"
    if not bar:
        return f"[{inner}]"  # not a link at all (e.g. "[ERROR]" in a log line)
    return text or target


def wiki_inline(text: str) -> str:
    """Inline wiki markup of one line → Markdown."""
    protected: list[str] = []

    def keep(value: str) -> str:
        protected.append(value)
        return f"\x00{len(protected) - 1}\x00"

    text = _MONO.sub(lambda m: keep(f"`{m[1]}`"), text)
    text = _IMAGE.sub(lambda m: keep(f"[{IMAGE_LABEL}: {_file_name(m[1])}]"), text)
    text = _LINK.sub(lambda m: keep(_link(m[1])), text)
    text = _COLOR.sub("", _ANCHOR.sub("", text))
    text = _BOLD.sub(r"**\1**", text)
    text = _ITALIC.sub(r"*\1*", text)
    text = _STRIKE.sub(r"~~\1~~", text)
    text = _UNDERLINE.sub(r"\1", text)
    text = _CITE.sub(r"*\1*", text)
    text = _SUPSUB.sub(r"\2", text)
    text = text.replace("\\\\", "  \n")  # explicit line break
    while _PROTECTED.search(text):
        text = _PROTECTED.sub(lambda m: protected[int(m[1])], text)
    return text


def _table_row(line: str) -> tuple[bool, list[str]]:
    stripped = line.strip()
    header = stripped.startswith("||")
    cells = re.split(r"\|\|?", stripped.strip("|"))
    return header, [wiki_inline(c.strip()).replace("|", "\\|") for c in cells]


def _table(rows: list[str]) -> list[str]:
    parsed = [_table_row(r) for r in rows]
    width = max(len(cells) for _, cells in parsed)
    lines: list[str] = []
    for index, (_, cells) in enumerate(parsed):
        cells = cells + [""] * (width - len(cells))
        lines.append("| " + " | ".join(cells) + " |")
        if index == 0:
            lines.append("|" + " --- |" * width)
    return ["", *lines, ""]


def _quoted(label: str | None, body: list[str]) -> list[str]:
    inner = ([f"**{label}.**", ""] if label else []) + _wiki_blocks(body)
    return ["", *(f"> {line}".rstrip() for line in _trim(inner)), ""]


def _trim(lines: list[str]) -> list[str]:
    """Without blank lines at either end, and runs of blank lines inside made one."""
    lines = [line for i, line in enumerate(lines) if line.strip() or i == 0 or lines[i - 1].strip()]
    while lines and not lines[0].strip():
        lines = lines[1:]
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    return lines


def _wiki_blocks(lines: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        opened = _BLOCK_OPEN.match(line)
        if opened:
            name, params, rest = opened[1].lower(), opened[2], opened[3]
            close = "{" + name + "}"
            body: list[str] = []
            tail = ""
            if close in rest.lower():
                at = rest.lower().index(close)
                body, tail = [rest[:at]], rest[at + len(close) :]
            else:
                if rest.strip():
                    body.append(rest)
                i += 1
                while i < len(lines) and close not in lines[i].lower():
                    body.append(lines[i])
                    i += 1
                if i < len(lines):
                    at = lines[i].lower().index(close)
                    if lines[i][:at].strip():
                        body.append(lines[i][:at])
                    tail = lines[i][at + len(close) :]
            bare, named = _param_map(params)
            if name in ("code", "noformat"):
                language = named.get("language", bare) if name == "code" else ""
                title = named.get("title")
                if title:
                    out += ["", f"{wiki_inline(title)}:"]
                out += ["", f"```{language}", *_trim(body), "```", ""]
            elif name == "quote":
                out += _quoted(None, body)
            else:
                title = named.get("title")
                label = PANEL_LABELS[name]
                if name == "panel" and title:
                    label = title
                elif title:
                    label = f"{label}: {title}"
                out += _quoted(label, body)
            if tail.strip():
                out += _wiki_blocks([tail])
            i += 1
            continue
        if line.lstrip().startswith("|"):
            rows = []
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                rows.append(lines[i])
                i += 1
            out += _table(rows)
            continue
        if _RULE.match(line):
            out += ["", "---", ""]
        elif heading := _HEADING.match(line):
            out += ["", "#" * int(heading[1]) + " " + wiki_inline(heading[2].strip()), ""]
        elif quote := _BQ.match(line):
            out += ["", f"> {wiki_inline(quote[1])}", ""]
        elif item := _LIST_ITEM.match(line):
            marks = item[1]
            if marks.startswith("-") and len(marks) > 1:  # "--" is text, not a list
                out.append(wiki_inline(line))
            else:
                indent = "   " * (len(marks) - 1)
                bullet = "1." if marks[-1] == "#" else "-"
                if out and out[-1].strip() and not _LIST_LINE.match(out[-1]):
                    out.append("")
                out.append(f"{indent}{bullet} {wiki_inline(item[2])}")
        else:
            if out and _LIST_LINE.match(out[-1]) and line.strip():
                out.append("")
            out.append(wiki_inline(line))
        i += 1
    return out


def wiki_to_markdown(text: str) -> str:
    """Markdown of a Jira wiki-markup text (description or comment)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return normalize_markdown("\n".join(_wiki_blocks(lines)))


# -- ADF (Atlassian Document Format, Cloud API v3) ----------------------------------------
def _adf_text(node: dict[str, Any]) -> str:
    text = str(node.get("text", ""))
    marks = node.get("marks") or []
    kinds = {str(m.get("type")) for m in marks}
    if "code" in kinds:
        return f"`{text}`"
    for mark in marks:
        kind = mark.get("type")
        if kind == "strong":
            text = f"**{text}**"
        elif kind == "em":
            text = f"*{text}*"
        elif kind == "strike":
            text = f"~~{text}~~"
        elif kind == "link":
            href = str((mark.get("attrs") or {}).get("href", ""))
            text = _card(href, text)
    return text


def _card(url: str, text: str = "") -> str:
    browse = _BROWSE.search(url)
    if browse:
        return f"{text} ({browse[1]})" if text and text != browse[1] else browse[1]
    return f"[{text}]({url})" if text and text != url else f"<{url}>"


def _adf_inline(nodes: list[dict[str, Any]]) -> str:
    parts: list[str] = []
    for node in nodes:
        kind = node.get("type")
        attrs = node.get("attrs") or {}
        if kind == "text":
            parts.append(_adf_text(node))
        elif kind == "hardBreak":
            parts.append("  \n")
        elif kind == "mention":
            parts.append(USER_PLACEHOLDER)
        elif kind in ("inlineCard", "blockCard"):
            parts.append(_card(str(attrs.get("url", ""))))
        elif kind == "emoji":
            parts.append(str(attrs.get("text") or attrs.get("shortName") or ""))
        elif kind == "status":
            parts.append(f"[{attrs.get('text', '')}]")
        elif kind == "date":
            parts.append(str(attrs.get("timestamp", "")))
        else:
            parts.append(_adf_inline(node.get("content") or []))
    return "".join(parts)


def _adf_list(node: dict[str, Any], depth: int) -> list[str]:
    bullet = "1." if node.get("type") == "orderedList" else "-"
    out: list[str] = []
    for item in node.get("content") or []:
        first = True
        for child in item.get("content") or []:
            if child.get("type") in ("bulletList", "orderedList"):
                out += _adf_list(child, depth + 1)
                continue
            text = " ".join(line for line in _adf_blocks([child], depth) if line.strip())
            prefix = f"{bullet} " if first else "  "
            out.append("   " * depth + prefix + text)
            first = False
    return out


def _adf_table(node: dict[str, Any]) -> list[str]:
    rows: list[list[str]] = []
    for row in node.get("content") or []:
        cells = []
        for cell in row.get("content") or []:
            text = " ".join(line.strip() for line in _adf_blocks(cell.get("content") or []))
            cells.append(text.strip().replace("|", "\\|"))
        rows.append(cells)
    if not rows:
        return []
    width = max(len(r) for r in rows)
    lines = []
    for index, cells in enumerate(rows):
        lines.append("| " + " | ".join(cells + [""] * (width - len(cells))) + " |")
        if index == 0:
            lines.append("|" + " --- |" * width)
    return ["", *lines, ""]


def _adf_blocks(nodes: list[dict[str, Any]], depth: int = 0) -> list[str]:
    out: list[str] = []
    for node in nodes:
        kind = node.get("type")
        attrs = node.get("attrs") or {}
        content = node.get("content") or []
        if kind == "paragraph":
            out += ["", _adf_inline(content), ""]
        elif kind == "heading":
            out += ["", "#" * int(attrs.get("level", 1)) + " " + _adf_inline(content), ""]
        elif kind in ("bulletList", "orderedList"):
            out += ["", *_adf_list(node, depth), ""]
        elif kind == "codeBlock":
            language = str(attrs.get("language") or "")
            code = "".join(str(c.get("text", "")) for c in content)
            out += ["", f"```{language}", code, "```", ""]
        elif kind == "panel":
            label = PANEL_LABELS.get(str(attrs.get("panelType", "info")), PANEL_LABELS["panel"])
            inner = [f"**{label}.**", "", *_adf_blocks(content)]
            out += ["", *(f"> {line}".rstrip() for line in _trim(inner)), ""]
        elif kind == "blockquote":
            out += ["", *(f"> {line}".rstrip() for line in _trim(_adf_blocks(content))), ""]
        elif kind == "rule":
            out += ["", "---", ""]
        elif kind == "table":
            out += _adf_table(node)
        elif kind in ("mediaSingle", "mediaGroup", "media"):
            names = _media_names(node)
            out += ["", *(f"[{IMAGE_LABEL}: {name}]" for name in names), ""]
        elif kind in ("expand", "nestedExpand"):
            title = str(attrs.get("title") or "")
            out += (["", f"**{title}**"] if title else []) + _adf_blocks(content)
        elif kind == "blockCard":
            out += ["", _card(str(attrs.get("url", ""))), ""]
        elif content:
            out += _adf_blocks(content, depth)
    return out


def _media_names(node: dict[str, Any]) -> list[str]:
    if node.get("type") == "media":
        name = (node.get("attrs") or {}).get("alt")
        return [str(name)] if name else []
    return [n for child in node.get("content") or [] for n in _media_names(child)]


def adf_to_markdown(doc: dict[str, Any]) -> str:
    """Markdown of an ADF document (Jira Cloud description or comment body)."""
    return normalize_markdown("\n".join(_adf_blocks(doc.get("content") or [])))


def jira_text_to_markdown(value: str | dict[str, Any] | None) -> str:
    """Either format (the API version decides which one a field comes in)."""
    if value is None:
        return ""
    if isinstance(value, dict):
        return adf_to_markdown(value)
    return wiki_to_markdown(value)


# -- the issue document ------------------------------------------------------------------
QUESTION_HEADING = "Вопрос"
RESOLUTION_HEADING = "Решение"
COMMENTS_HEADING = "Комментарии специалистов"
RESOLUTION_LABEL = "Резолюция"
ROLE_LABELS = {"reporter": "Заявитель", "agent": "Специалист"}

Convert = Callable[[str | dict[str, Any] | None], str]


def issue_to_markdown(raw_body: str, convert: Convert = jira_text_to_markdown) -> str:
    """Markdown of a ``jira_issue`` document (the JSON the Jira source stores).

    The body keeps the parts apart (summary, description, resolution, comments by role)
    so the text conversion happens in the pipeline's Markdown stage like every source's.
    """
    data = json.loads(raw_body)
    key, summary = str(data.get("key", "")), str(data.get("summary", "")).strip()
    out = [f"# {key}: {summary}" if key else f"# {summary}", "", f"## {QUESTION_HEADING}", ""]
    out.append(convert(data.get("description")).strip() or summary)
    out += ["", f"## {RESOLUTION_HEADING}", ""]
    if data.get("resolution"):
        out += [f"{RESOLUTION_LABEL}: {data['resolution']}.", ""]
    comments = [c for c in data.get("comments") or [] if convert(c.get("body")).strip()]
    if comments:
        out += [f"### {COMMENTS_HEADING}", ""]
        for comment in comments:
            role = ROLE_LABELS.get(str(comment.get("role")), ROLE_LABELS["agent"])
            out += [f"**{role}:**", "", convert(comment.get("body")).strip(), ""]
    return normalize_markdown("\n".join(out))
