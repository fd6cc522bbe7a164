"""An independent check of scrubbed text: a method that is not the scrubber.

The blocking check re-scans every new chunk. Re-running the scrubber there could not
catch what the scrubber misses (same NER, same rules, same bugs), so the verifier is
built from different parts and shares no code path with presidio or the NER:

- people: the organisation's directory (hashed name lemmas, kb_core.pii.directory) and
  pymorphy3's name grammemes, in any case and either script (kb_core.pii.names): a word
  whose dictionary readings are mostly a first name, surname or patronymic;
- e-mail addresses and Russian phone numbers by their written form;
- INN, SNILS and card numbers by their check digits (kb_core.pii.checksums).

It deliberately knows less than the scrubber (no context words, no signatures, no
transliterated surnames of unknown people): it must pass on what a working scrubber
produced, and fail when the scrubber stops recognising a kind of data. Findings carry
types and offsets only.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from kb_core.pii.checksums import inn_valid, luhn_valid, snils_valid
from kb_core.pii.names import in_directory, is_latin, name_kind

_WORD = re.compile(r"[A-Za-zА-Яа-яЁё]+(?:-[A-Za-zА-Яа-яЁё]+)?")
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+7|8)[\s\-]?\(?\d{3}\)?[\s\-]?\d{3}[\s\-]?\d{2}[\s\-]?\d{2}(?!\d)"
)
_INN = re.compile(r"(?<!\d)(?:\d{12}|\d{10})(?!\d)")
_SNILS = re.compile(r"(?<!\d)\d{3}-\d{3}-\d{3}[ -]\d{2}(?!\d)")
# Grouped as printed on a card: sixteen bare digits could be any identifier.
_CARD = re.compile(r"(?<!\d)\d{4}(?:[ -]\d{4}){3}(?!\d)")
_PLACEHOLDER = re.compile(r"<[A-Z_]{3,20}>")


@dataclass(frozen=True)
class Suspect:
    kind: str
    start: int
    end: int


@dataclass(frozen=True)
class Verifier:
    """``directory``: lemma hashes of the organisation's people; ``allow``: casefolded
    words never reported (the scrubber's allow-list: product, form and role words)."""

    directory: frozenset[str] = frozenset()
    allow: frozenset[str] = frozenset()

    def scan(self, text: str) -> list[Suspect]:
        text = _PLACEHOLDER.sub(lambda m: " " * len(m.group()), text)
        found: list[Suspect] = []
        for kind, pattern, valid in (
            ("EMAIL", _EMAIL, None),
            ("PHONE", _PHONE, None),
            ("SNILS", _SNILS, snils_valid),
            ("INN", _INN, inn_valid),
            ("CARD", _CARD, luhn_valid),
        ):
            for match in pattern.finditer(text):
                if valid is None or valid(match.group()):
                    found.append(Suspect(kind, match.start(), match.end()))
        taken = [(s.start, s.end) for s in found]
        for match in _WORD.finditer(text):
            if any(a <= match.start() < b for a, b in taken):
                continue
            if self._is_person(match.group()):
                found.append(Suspect("PERSON", match.start(), match.end()))
        return sorted(found, key=lambda s: s.start)

    def _is_person(self, word: str) -> bool:
        if word.casefold() in self.allow:
            return False
        if in_directory(word, self.directory):
            return True
        if is_latin(word):
            # Latin words are mostly product and technical terms; a capitalised one
            # that reads as a Russian name in transliteration is a person.
            return word[:1].isupper() and not word.isupper() and name_kind(word) is not None
        return name_kind(word) is not None

    def counts(self, text: str) -> Counter[str]:
        return Counter(s.kind for s in self.scan(text))
