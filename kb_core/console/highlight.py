"""Which words of a snippet match the question, by lemma.

The lexical half of search matches lemmas («шаблон» finds «шаблонов»), so the highlight
must too: a plain substring match would miss most of what made a hit rank. Returned as
segments, not HTML, so the page escapes every character it shows.
"""

from __future__ import annotations

from kb_core.generation.extractive import STOP_LEMMAS
from kb_core.text.lemmas import WORD, term


def _key(word: str) -> str | None:
    """The word's search term, or None for a function word: those match everything and
    say nothing about why a hit ranks (the extractive answer ignores the same ones)."""
    key = term(word)
    return key if len(key) > 1 and key not in STOP_LEMMAS else None


def highlight(text: str, question: str) -> list[tuple[str, bool]]:
    """``text`` cut into (segment, matches) pairs; joined, the segments are ``text``."""
    wanted = {key for key in map(_key, WORD.findall(question)) if key is not None}
    segments: list[tuple[str, bool]] = []
    position = 0
    for match in WORD.finditer(text):
        key = _key(match[0])
        if key is None or key not in wanted:
            continue
        if match.start() > position:
            segments.append((text[position : match.start()], False))
        segments.append((match[0], True))
        position = match.end()
    if position < len(text):
        segments.append((text[position:], False))
    return segments
