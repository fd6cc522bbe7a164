"""Which words of a snippet match the question, by lemma.

The lexical half of search matches lemmas («печатает» finds «печати»), so the highlight
must too: a plain substring match would miss most of what made a hit rank. Returned as
segments, not HTML, so the page escapes every character it shows.
"""

from __future__ import annotations

import re

from kb_core.text.lemmas import lemma

_WORD = re.compile(r"[\w][\w\-]*[\w]|[\w]", re.UNICODE)
# Function words match everything and say nothing about why a hit ranks.
_MIN_LEMMA_CHARS = 3


def _key(word: str) -> str:
    return lemma(word.lower().replace("ё", "е"))


def highlight(text: str, question: str) -> list[tuple[str, bool]]:
    """``text`` cut into (segment, matches) pairs; joined, the segments are ``text``."""
    wanted = {_key(w) for w in _WORD.findall(question) if len(w) >= _MIN_LEMMA_CHARS}
    segments: list[tuple[str, bool]] = []
    position = 0
    for match in _WORD.finditer(text):
        if len(match[0]) < _MIN_LEMMA_CHARS or _key(match[0]) not in wanted:
            continue
        if match.start() > position:
            segments.append((text[position : match.start()], False))
        segments.append((match[0], True))
        position = match.end()
    if position < len(text):
        segments.append((text[position:], False))
    return segments
