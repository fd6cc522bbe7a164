"""A generated answer as a Pyrus comment: ``formatted_text`` HTML and a plain-text twin.

Every piece of text — from the LLM, the ticket, the knowledge base, the texts file — is
escaped with ``html.escape``; the only markup is what this module writes itself
(:data:`ALLOWED_TAGS`). Links are made only for absolute http(s) URLs of the sources
(Confluence pages, past tickets); anything else is shown as text. Nothing from the
settings goes into a comment: no keys, no endpoints, no error details.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from kb_core.generation.schema import GeneratedAnswer, Source
from kb_core.texts import Texts, load_texts

ALLOWED_TAGS = frozenset({"p", "b", "i", "br", "ul", "li", "a"})
_UNSAFE_URL_CHARS = re.compile(r"[\s\x00-\x1f\x7f<>\"'`\\]")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


@dataclass(frozen=True)
class RenderedComment:
    html: str  # for ``formatted_text``
    text: str  # the same content as plain text (``text``)


def safe_url(url: str | None) -> str | None:
    """``url`` when it is an absolute http(s) URL without characters that break out of an
    attribute; otherwise None (the source is shown without a link)."""
    if not url or _UNSAFE_URL_CHARS.search(url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return url


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _mode_note(answer: GeneratedAnswer, texts: Texts) -> str:
    if answer.mode == "llm":
        return texts.mode_llm
    reason = {
        "llm_error": texts.reason_llm_error,
        "invalid_output": texts.reason_invalid_output,
    }.get(answer.fallback_reason or "")
    return f"{texts.mode_extractive} {reason}" if reason else texts.mode_extractive


def _source_label(source: Source, texts: Texts) -> str:
    kind = source.hit.source
    if kind == "pyrus":
        return texts.source_ticket.format(id=source.hit.external_id)
    if kind == "correction":
        return texts.source_correction
    if kind == "files":
        return texts.source_file
    return texts.source_article


def _listed_sources(answer: GeneratedAnswer, texts: Texts) -> tuple[str, tuple[Source, ...]]:
    cited = answer.cited
    if cited:
        return texts.heading_sources, cited
    return texts.heading_sources_uncited, answer.sources


def _confidence(answer: GeneratedAnswer, texts: Texts) -> str:
    return texts.confidence_value.format(percent=round(answer.answer.confidence * 100))


def render_html(answer: GeneratedAnswer, texts: Texts | None = None) -> str:
    texts = texts or load_texts()
    reply = answer.answer
    parts = [f"<p><i>{_e(_mode_note(answer, texts))}</i></p>"]
    if "links_removed" in answer.flags:
        parts.append(f"<p><b>{_e(texts.links_removed_warning)}</b></p>")
    parts.append(
        f"<p><b>{_e(texts.label_category)}:</b> {_e(reply.category)}<br>"
        f"<b>{_e(texts.label_confidence)}:</b> {_e(_confidence(answer, texts))}</p>"
    )
    if reply.recommendations:
        parts.append(f"<p><b>{_e(texts.heading_recommendations)}</b></p>")
        items = "".join(f"<li>{_e(item)}</li>" for item in reply.recommendations)
        parts.append(f"<ul>{items}</ul>")
    parts.append(f"<p><b>{_e(texts.heading_draft)}</b></p>")
    for paragraph in _PARAGRAPH_BREAK.split(reply.draft_reply.strip()):
        lines = [_e(line.strip()) for line in paragraph.splitlines() if line.strip()]
        if lines:
            parts.append(f"<p>{'<br>'.join(lines)}</p>")
    heading, sources = _listed_sources(answer, texts)
    if sources:
        parts.append(f"<p><b>{_e(heading)}</b></p>")
        entries = []
        for source in sources:
            title = _e(f"[{source.id}] {source.hit.title}")
            url = safe_url(source.hit.url)
            link = f'<a href="{_e(url)}">{title}</a>' if url else title
            item = f"{link} — {_e(_source_label(source, texts))}"
            if source.quotes:
                item += f"<br><i>«{_e(' '.join(source.quotes))}»</i>"
            entries.append(f"<li>{item}</li>")
        parts.append(f"<ul>{''.join(entries)}</ul>")
    return "".join(parts)


def render_text(answer: GeneratedAnswer, texts: Texts | None = None) -> str:
    texts = texts or load_texts()
    reply = answer.answer
    lines = [
        _mode_note(answer, texts),
        *([texts.links_removed_warning] if "links_removed" in answer.flags else []),
        f"{texts.label_category}: {reply.category}",
        f"{texts.label_confidence}: {_confidence(answer, texts)}",
    ]
    if reply.recommendations:
        lines += ["", texts.heading_recommendations]
        lines += [f"- {item}" for item in reply.recommendations]
    lines += ["", texts.heading_draft, reply.draft_reply.strip()]
    heading, sources = _listed_sources(answer, texts)
    if sources:
        lines += ["", heading]
        for source in sources:
            url = safe_url(source.hit.url)
            line = f"- [{source.id}] {source.hit.title} — {_source_label(source, texts)}"
            lines.append(f"{line}: {url}" if url else line)
            if source.quotes:
                lines.append(f"  «{' '.join(source.quotes)}»")
    return "\n".join(lines)


def render(answer: GeneratedAnswer, texts: Texts | None = None) -> RenderedComment:
    """The comment for ``answer``: HTML for ``formatted_text`` and the plain text."""
    texts = texts or load_texts()
    return RenderedComment(html=render_html(answer, texts), text=render_text(answer, texts))
