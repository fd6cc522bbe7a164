"""What an LLM's draft may contain beyond words: links only from the sources, and never
the system prompt.

A model that obeys an instruction injected into a ticket (or a compromised model server)
can write a phishing link or recite its instructions; the draft is posted into the ticket
for an agent to send on. So a URL stays in the answer only when a passage the answer
cites contains it, or its host is on the configured allow list; any other is removed
and the answer flagged. The system prompt is guarded by a canary check: a draft that
repeats a stretch of it is not used at all (the caller falls back to extractive mode).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from kb_core.generation.schema import BotAnswer, Source

# http(s) links, www. hosts and bare domains with a path; trailing punctuation is prose.
URL = re.compile(
    r"(?i)\b(?:(?:https?|ftp)://|www\.)[^\s<>\"'«»()\[\]{}]+"
    r"|\b[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9-]{1,63})*\.[a-z]{2,24}/[^\s<>\"'«»]*"
)
_TRAILING = ".,;:!?)»\"'"
# Words of the system prompt that, repeated in this many in a row, mean it leaked.
CANARY_WORDS = 8
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class LinkCheck:
    answer: BotAnswer
    removed: tuple[str, ...]  # URLs taken out of the answer (never logged: may be personal)


def urls(text: str) -> list[str]:
    return [m.group().rstrip(_TRAILING) for m in URL.finditer(text)]


def _host(url: str) -> str:
    target = url if "://" in url else f"http://{url}"
    try:
        return (urlsplit(target).hostname or "").lower()
    except ValueError:
        return ""


def _normal(url: str) -> str:
    return re.sub(r"(?i)^(?:https?|ftp)://", "", url).removeprefix("www.").rstrip("/").lower()


def _allowed(url: str, sourced: Collection[str], hosts: Collection[str]) -> bool:
    if _normal(url) in sourced:
        return True
    host = _host(url)
    return any(host == h or host.endswith("." + h) for h in hosts)


def vet_links(
    answer: BotAnswer, sources: Sequence[Source], allow_hosts: Collection[str] = ()
) -> LinkCheck:
    """The answer with every URL removed that no cited source (passage text or source
    link) contains and no allowed host serves."""
    cited = {s.id for s in sources if s.id in answer.source_ids}
    sourced: set[str] = set()
    for source in sources:
        if source.id in cited:
            sourced.update(_normal(u) for u in urls(source.text))
            if source.hit.url:
                sourced.add(_normal(source.hit.url))
    hosts = {h.strip().lower() for h in allow_hosts if h.strip()}
    removed: list[str] = []

    def strip(text: str) -> str:
        def replace(match: re.Match[str]) -> str:
            found = match.group()
            url = found.rstrip(_TRAILING)
            if _allowed(url, sourced, hosts):
                return found
            removed.append(url)
            return found[len(url) :]

        return re.sub(r"[ \t]{2,}", " ", URL.sub(replace, text))

    cleaned = answer.model_copy(
        update={
            "draft_reply": strip(answer.draft_reply),
            "recommendations": [strip(r) for r in answer.recommendations],
        }
    )
    return LinkCheck(cleaned if removed else answer, tuple(removed))


def leaks_prompt(text: str, prompt: str, words: int = CANARY_WORDS) -> bool:
    """Whether ``text`` repeats ``words`` consecutive words of ``prompt`` (case-blind):
    an answer never needs to, an extraction of the instructions always does."""
    prompt_words = [w.casefold() for w in _WORD.findall(prompt)]
    shingles = {tuple(prompt_words[i : i + words]) for i in range(len(prompt_words) - words + 1)}
    text_words = [w.casefold() for w in _WORD.findall(text)]
    return any(
        tuple(text_words[i : i + words]) in shingles for i in range(len(text_words) - words + 1)
    )
