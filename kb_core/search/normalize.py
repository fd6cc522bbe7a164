"""Query normalisation: what users type into tickets, cleaned without changing what they ask.

``normalize_query`` applies Unicode NFKC (``№`` kept), ``ё`` → ``е``, one kind of quote
and dash, drops zero-width and control characters, folds Latin/Cyrillic look-alikes
inside one word to the word's main script («SАML» with a Cyrillic А → «SAML»), collapses
whitespace, removes greetings and politeness formulas («здравствуйте», «добрый день»,
«спасибо», «пожалуйста», …) and trims punctuation noise from both ends. Case is kept:
embedders see «SSO», «AUTHENTICATIONFAILED» and «X-Pyrus-Sig» as written, and the
lexical side lower-cases through ``kb_core.text.lemmas`` anyway. Error codes, versions,
paths and e-mail addresses pass unchanged.

Search normalises the query only when query expansion is on (``KB_SEARCH_EXPAND_QUERY``):
the normalised text goes to BM25, the query as typed to the embedder (see
``kb_core.search.hybrid``).
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["normalize_chars", "normalize_query"]

_QUOTES_AND_DASHES = str.maketrans(
    {
        **dict.fromkeys("«»„“”‟❝❞〝〞〟＂″", '"'),
        **dict.fromkeys("‘’‚‛‹›′＇", "'"),
        "\u0300": None,  # stress marks over Cyrillic vowels («зна́чение»)
        "\u0301": None,
        **dict.fromkeys("‐‑‒–—―⁃−﹘﹣－", "-"),
        "ё": "е",
        "Ё": "Е",
    }
)
_CYR_TO_LAT = dict(zip("АВЕКМНОРСТХаеокрсух", "ABEKMHOPCTXaeokpcyx", strict=True))
_LAT_TO_CYR = {lat: cyr for cyr, lat in _CYR_TO_LAT.items()}
_LETTER_RUN = re.compile(r"[^\W\d_]+")
_LATIN = re.compile(r"[A-Za-z]")
_CYRILLIC = re.compile(r"[А-Яа-яЁё]")
_SPACES = re.compile(r"\s+")

_THANKS_FOR = r"(?:\s+за\s+(?:помощь|ответ|внимание|понимание|содействие))?"
_POLITENESS = [
    r"здравствуй(?:те)?",
    r"здрась?те",
    r"добр(?:ый|ого)\s+(?:день|дня|вечер|вечера)",
    r"доброе\s+утро",
    r"доброго\s+утра",
    r"доброй\s+ночи",
    r"доброго\s+времени\s+суток",
    r"(?:всем\s+)?привет(?:ствую)?(?:\s+(?:всем|всех))?",
    r"(?:(?:заранее|большое|огромное)\s+)?спасибо(?:\s+(?:заранее|большое|огромное))?"
    + _THANKS_FOR,
    r"(?:заранее\s+)?благодарю" + _THANKS_FOR,
    r"пожалуйста",
    r"будьте\s+добры",
    r"с\s+уважением",
]
# A formula is a whole word sequence (not part of an address, path or compound), with the
# comma before it and the punctuation after it: «Подскажите, пожалуйста, как …» →
# «Подскажите как …».
_POLITENESS_RE = re.compile(
    r"(?:[,;]\s*)?(?<![\w@./\\-])(?:" + "|".join(_POLITENESS) + r")(?![\w@/\\-])\s*[,!.;]*",
    re.IGNORECASE,
)
_LEADING_NOISE = re.compile(r"^(?:[-*•·>#]+\s+|[.,;:!?]+\s*)+")
_TRAILING_NOISE = re.compile(r"[\s.,;:!?]+$")
_HAS_WORD = re.compile(r"\w")


def _fold_mixed_script(match: re.Match[str]) -> str:
    run = match.group(0)
    n_latin = len(_LATIN.findall(run))
    n_cyrillic = len(_CYRILLIC.findall(run))
    if not n_latin or not n_cyrillic:
        return run
    to_latin = "".join(_CYR_TO_LAT.get(ch, ch) for ch in run)
    to_cyrillic = "".join(_LAT_TO_CYR.get(ch, ch) for ch in run)
    latin_ok = not _CYRILLIC.search(to_latin)
    cyrillic_ok = not _LATIN.search(to_cyrillic)
    if latin_ok and (n_latin >= n_cyrillic or not cyrillic_ok):
        return to_latin
    if cyrillic_ok:
        return to_cyrillic
    return run


def normalize_chars(text: str) -> str:
    """Characters only: NFKC, ё, quotes, dashes, invisible characters, look-alikes, spaces.

    Shared with the synonym dictionary, whose entries are cleaned the same way so that
    they meet the queries they are meant to match."""
    # NFKC would turn «№» into «No»; it stays, as in «заявка №123».
    text = "№".join(unicodedata.normalize("NFKC", part) for part in text.split("№"))
    text = text.translate(_QUOTES_AND_DASHES)
    text = "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cf")
    )
    text = _LETTER_RUN.sub(_fold_mixed_script, text)
    return _SPACES.sub(" ", text).strip()


def _trim(text: str) -> str:
    text = _LEADING_NOISE.sub("", text)
    return _TRAILING_NOISE.sub("", text)


def normalize_query(text: str) -> str:
    """The query cleaned for retrieval (see the module docstring); case is kept."""
    text = normalize_chars(text)
    polite_free = _SPACES.sub(" ", _POLITENESS_RE.sub(" ", text)).strip()
    trimmed = _trim(polite_free)
    if _HAS_WORD.search(trimmed):
        return trimmed
    # Nothing but a greeting or thanks: keep it rather than return an empty query.
    return _trim(text) if _HAS_WORD.search(_trim(text)) else text
