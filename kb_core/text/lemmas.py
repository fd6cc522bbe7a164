"""Russian lemmatisation for lexical retrieval (pymorphy3, cached per word).

«печатает», «печати» and «печать» must meet in one term, which PostgreSQL's snowball
stemmer does not guarantee. Words are lower-cased; numbers, Latin words and codes such
as «x-pyrus-sig» are kept as they are.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache
from typing import Any

# A word as lexical search sees it (exported: highlighting must cut text the same way).
WORD = re.compile(r"[\w][\w\-.@]*[\w]|[\w]", re.UNICODE)
_CYRILLIC = re.compile(r"[а-яё]")


@lru_cache(maxsize=1)
def _morph() -> Any:
    import pymorphy3

    return pymorphy3.MorphAnalyzer(lang="ru")


@lru_cache(maxsize=500_000)
def lemma(word: str) -> str:
    if not _CYRILLIC.search(word) or "-" in word:
        return word
    return str(_morph().parse(word)[0].normal_form).replace("ё", "е")


@lru_cache(maxsize=100_000)
def is_known(word: str) -> bool:
    """Whether pymorphy3's dictionary holds this lower-case Cyrillic word (not a guess)."""
    return bool(_CYRILLIC.search(word)) and bool(_morph().word_is_known(word))


def words(text: str) -> list[str]:
    """The words ``lemmas`` lemmatises, as written."""
    return list(WORD.findall(text))


def term(word: str) -> str:
    """The search term of one word as written: lower-cased, ё as е, lemmatised."""
    return lemma(word.lower().replace("ё", "е"))


def lemmas(text: str) -> list[str]:
    return [term(w) for w in words(text)]


def term_counts(text: str) -> Counter[str]:
    return Counter(lemmas(text))
