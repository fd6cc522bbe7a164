"""What a single word says about being a person's name, from pymorphy3's dictionary.

Shared by the scrubber's name recognizers and by the independent verifier: neither
capital letters nor the script decide. pymorphy3 lower-cases before parsing, so
«наталья» and «Наталья» read the same, and its dictionary (OpenCorpora) tags first names
(``Name``, diminutives included: «Саша», «Наташе»), surnames (``Surn``) and patronymics
(``Patr``) in every case. Latin-script words are transliterated to Cyrillic in the few
ways Russian names are commonly spelt («Dmitry», «Dmitriy», «Natalia», «Zhenya») and
parsed the same way.

Only dictionary readings count: pymorphy3 guesses tags for unknown words («Токен» → a
first name), and a guess is no evidence. A word is a name *surely* when most of its
reading weight is a name reading (``name_kind``: «ольга», «петровой»), and *possibly*
when any reading is one (``could_be_name``: «вера», «роза», «лев», which are also
words and need a name context).
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from typing import Any

NAME_TAGS = (("Name", "name"), ("Surn", "surname"), ("Patr", "patronymic"))

LATIN_WORD = re.compile(r"[A-Za-z]+")

# Digraphs first (longest match wins), then single letters. Several spellings are tried
# per word: transliteration is not one standard («Aleksey», «Alexei», «Alexey»).
_LATIN_MULTI: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("shch", ("щ",)),
    ("iya", ("ия",)),
    ("iia", ("ия",)),
    ("sch", ("щ", "ш")),
    ("zh", ("ж",)),
    ("kh", ("х",)),
    ("ch", ("ч",)),
    ("sh", ("ш",)),
    ("ts", ("ц",)),
    ("tz", ("ц",)),
    ("yu", ("ю",)),
    ("iu", ("ю",)),
    ("ya", ("я",)),
    ("ia", ("ия", "я", "ья")),
    ("yo", ("ё", "е")),
    ("ye", ("е",)),
    ("ey", ("ей",)),
    ("iy", ("ий",)),
    ("yy", ("ый", "ий")),
    ("ay", ("ай",)),
    ("oy", ("ой",)),
    ("ei", ("ей",)),
    ("ks", ("кс",)),
    ("ph", ("ф",)),
    ("th", ("т",)),
)
_LATIN_SINGLE: dict[str, tuple[str, ...]] = {
    "a": ("а",),
    "b": ("б",),
    "c": ("к", "ц"),
    "d": ("д",),
    "e": ("е", "э"),
    "f": ("ф",),
    "g": ("г",),
    "h": ("х",),
    "i": ("и", "й"),
    "j": ("й", "дж"),
    "k": ("к",),
    "l": ("л",),
    "m": ("м",),
    "n": ("н",),
    "o": ("о",),
    "p": ("п",),
    "q": ("к",),
    "r": ("р",),
    "s": ("с",),
    "t": ("т",),
    "u": ("у",),
    "v": ("в",),
    "w": ("в",),
    "x": ("кс",),
    "y": ("ы", "й", "и"),
    "z": ("з",),
}
# More than this many spellings of one word are not tried (long words multiply them).
_MAX_VARIANTS = 48


@lru_cache(maxsize=1)
def morph() -> Any:
    import pymorphy3

    return pymorphy3.MorphAnalyzer(lang="ru")


@lru_cache(maxsize=50_000)
def transliterations(word: str) -> tuple[str, ...]:
    """Cyrillic spellings of a Latin-script word, the most regular first."""
    word = word.lower()
    variants = [""]
    i = 0
    while i < len(word):
        for latin, cyrillic in _LATIN_MULTI:
            if word.startswith(latin, i):
                options, i = cyrillic, i + len(latin)
                break
        else:
            options, i = _LATIN_SINGLE.get(word[i], ("",)), i + 1
        variants = [v + o for v in variants for o in options][:_MAX_VARIANTS]
    # A soft sign has no Latin letter: «Olga» is «Ольга», «Ilya» is «Илья».
    softened = [
        re.sub(r"л(?=я$)", "ль", re.sub(r"л(?=[бвгджзклмнпрстфхцчшщ])", "ль", v)) for v in variants
    ]
    return tuple(dict.fromkeys([*variants, *softened]))


# A word is surely a name when its name readings weigh at least this much (and, for a
# first name, its other readings less than OTHER_MAX): «роза» (0.67 a name, 0.33 a
# flower) and «лев» stay words unless the context says otherwise; «дима» (0.86) is a name.
SURE_MIN = 0.5
OTHER_MAX = 0.3
# Some name reading at least this heavy: possibly a name (in a name position).
POSSIBLE_MIN = 0.1


@lru_cache(maxsize=300_000)
def _weights(word: str) -> tuple[dict[str, float], float]:
    """Share of each name kind among the word's dictionary readings, and of common words.

    First names in the plural («о лидах» is about leads, not Lidas) and other proper
    nouns (the town «Артём», the region «Виктория») are left out: the question is
    whether the word is a person's name or a common word.
    """
    parses = morph().parse(word)
    weights: dict[str, float] = {}
    other = 0.0
    for parse in parses:
        if not parse.is_known:
            continue
        label = next((lb for tag, lb in NAME_TAGS if tag in parse.tag), None)
        if label is None:
            if not ({"Geox", "Orgn"} & parse.tag.grammemes):
                other += parse.score
        elif not (label == "name" and "plur" in parse.tag):
            weights[label] = weights.get(label, 0.0) + parse.score
    total = sum(weights.values()) + other
    if not total:
        return {}, 0.0
    return {k: v / total for k, v in weights.items()}, other / total


def _abbreviation(word: str) -> bool:
    # «ИНН», «ИП», «ООО»: short capitals are abbreviations, never names.
    return word.isupper() and len(word) <= 3


@lru_cache(maxsize=300_000)
def cyrillic_name_kind(word: str, other_max: float = OTHER_MAX) -> str | None:
    """``name``/``surname``/``patronymic`` when the word's dictionary readings are mostly
    that and rarely anything else (any case), else None."""
    if len(word) < 2 or _abbreviation(word):
        return None
    weights, other = _weights(word.lower())
    for label, weight in weights.items():
        # Only first names compete with common words («вера», «роза»); a surname that is
        # also a plural noun («волков», «морозов») is the surname in a support ticket.
        if weight >= SURE_MIN and (label != "name" or other < other_max):
            return label
    return None


def ambiguous(word: str, *, first_name_only: bool = False) -> bool:
    """A name that is as often a common word («вера», «роза», «лев», «ветров»);
    ``first_name_only``: a first name with no surname reading («Вера», not «Гришина»)."""
    weights, other = _weights(word.lower())
    if first_name_only and (not weights.get("name") or weights.get("surname")):
        return False
    return bool(weights) and other >= OTHER_MAX


@lru_cache(maxsize=300_000)
def cyrillic_could_be_name(word: str) -> bool:
    """Some dictionary reading of the word is a name, surname or patronymic."""
    if len(word) < 3 or _abbreviation(word):
        return False
    return sum(_weights(word.lower())[0].values()) >= POSSIBLE_MIN


def is_latin(word: str) -> bool:
    return bool(LATIN_WORD.fullmatch(word))


@lru_cache(maxsize=100_000)
def name_kind(word: str) -> str | None:
    """Surely a name (see module doc), in either script."""
    if not is_latin(word):
        return cyrillic_name_kind(word)
    if len(word) < 3 or _abbreviation(word):
        return None
    for variant in transliterations(word):
        # Written in Latin letters, a name is not the Russian common word it spells.
        kind = cyrillic_name_kind(variant, other_max=1.0)
        # Short Latin words read as surnames are mostly English («Best» → «Бест»).
        if kind is not None and (kind == "name" or len(word) >= 5):
            return kind
    return None


@lru_cache(maxsize=100_000)
def could_be_name(word: str) -> bool:
    """Possibly a name (see module doc), in either script."""
    if not is_latin(word):
        return cyrillic_could_be_name(word)
    return len(word) >= 3 and any(cyrillic_could_be_name(v) for v in transliterations(word))


@lru_cache(maxsize=100_000)
def name_lemmas(word: str) -> frozenset[str]:
    """Dictionary forms of the word's name readings, plus the word itself lower-cased:
    every case form of a directory name maps to one of these («Петровой» → «петрова»,
    «петров»)."""
    spellings = transliterations(word) if is_latin(word) else (word.lower(),)
    lemmas = {word.lower()}
    for spelling in spellings:
        for parse in morph().parse(spelling):
            if any(tag in parse.tag for tag, _ in NAME_TAGS):
                lemmas.add(parse.normal_form)
                lemmas.add(spelling)
    return frozenset(lemmas)


DIRECTORY_SALT = b"kb-person-directory\x1f"


def lemma_hash(lemma: str) -> str:
    """What the directory stores of a name: a hash of its lemma, never the name."""
    return hashlib.sha256(DIRECTORY_SALT + lemma.casefold().encode("utf-8")).hexdigest()[:32]


def in_directory(word: str, directory: frozenset[str]) -> bool:
    """The word is a case form of a name in the organisation's directory."""
    if not directory or len(word) < 2:
        return False
    if lemma_hash(word) in directory:
        return True
    return any(lemma_hash(lemma) in directory for lemma in name_lemmas(word))
