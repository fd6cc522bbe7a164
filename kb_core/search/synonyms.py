"""Synonym expansion: a query plus the equivalents of the groups it mentions.

``SynonymDictionary`` holds groups of equivalent spellings (``config/synonyms.yaml``,
``KB_SYNONYMS_PATH``, read by ``kb_core.search.synonyms_file``) and expands a normalised
query (``kb_core.search.normalize``) with the equivalents of the groups it mentions:
lemmas for BM25 (``Expansion.added_terms``) and readable text for embedders
(``Expansion.expanded_text``). Search uses it when ``KB_SEARCH_EXPAND_QUERY`` is on.

Entries match on pymorphy3 lemmas, word by word, so «постмортема» finds «постмортем»
and multi-word entries match in any inflection. Slang and loanwords pymorphy3 does not
know get a guessed lemma that differs between forms («впн» → впн, «впна» → впный), so
such words also match on their stem: the entry minus a final vowel, «й» or «ь» against
the query word minus a common case ending («впна», «деплоя», «экселе», «vpn-ом»), and a
Latin head of a compound counts on its own («SAML-вход» mentions «saml»). Words
pymorphy3 knows match on lemmas only, so «правой» never meets «права». Overlapping
entries: the longest wins; each group expands once.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kb_core.search.normalize import normalize_chars, normalize_query
from kb_core.search.synonyms_file import RawGroup, read_groups, value_kind
from kb_core.text.lemmas import is_known, lemma, words

__all__ = ["Expansion", "SynonymDictionary", "SynonymMatch"]

# -- matching ------------------------------------------------------------------------------------

# Noun case endings tried on query words for the stem fallback.
_ENDINGS: tuple[str, ...] = ("ами", "ями", "ом", "ем", "ой", "ей", "ою", "ею", "ам", "ям", "ах")
_ENDINGS += ("ях", "ов", "ев", "а", "я", "у", "ю", "е", "и", "ы", "й")
_STEM_DROPS = "аяйьое"  # what an entry loses to become its stem («деплой» → депло)
_MIN_STEM = 3
# A word whose last part is Cyrillic: «впн», «пост-мортем», «push-уведомление», «vpn-ом».
_INFLECTABLE = re.compile(r"(?:[a-z0-9а-я]+-)*[а-я]+")
# A Latin head joined to a Russian word: «saml-вход», «android-телефоне» also mention «saml».
_LATIN_HEAD = re.compile(r"([a-z0-9]*[a-z][a-z0-9]*)-[а-я]")


def _query_stems(word: str) -> frozenset[str]:
    stems = {word}
    if _INFLECTABLE.fullmatch(word):
        for ending in _ENDINGS:
            if word.endswith(ending):
                stem = word[: -len(ending)].rstrip("-")
                if len(stem) >= _MIN_STEM:
                    stems.add(stem)
    return frozenset(stems)


def _latin_head(word: str) -> str | None:
    head = _LATIN_HEAD.match(word)
    return head.group(1) if head and len(head.group(1)) >= 2 else None


def _entry_stem(word: str) -> str | None:
    if not _INFLECTABLE.fullmatch(word):
        return word  # Latin words, codes: the exact word (it also meets «vpn-ом»)
    if "-" not in word and is_known(word):
        return None  # pymorphy3 knows it: its lemma is reliable, a stem would overreach
    if word[-1] in _STEM_DROPS and len(word[:-1].rstrip("-")) >= _MIN_STEM:
        return word[:-1].rstrip("-")
    return word


def _fold(word: str) -> str:
    return word.lower().replace("ё", "е")


@dataclass(frozen=True, slots=True)
class _Token:
    text: str
    lemma: str
    stems: frozenset[str]
    head: str | None


@dataclass(frozen=True, slots=True)
class _Word:
    lemma: str
    stem: str | None

    def match(self, token: _Token) -> int:
        """How well the token matches: 3 by lemma, 2 by stem, 1 by a Latin head, 0 not."""
        if token.lemma == self.lemma:
            return 3
        if self.stem is not None and self.stem in token.stems:
            return 2
        return 1 if self.stem is not None and self.stem == token.head else 0


@dataclass(frozen=True, slots=True)
class _Entry:
    group: int
    text: str
    words: tuple[_Word, ...]

    @property
    def lemmas(self) -> tuple[str, ...]:
        return tuple(w.lemma for w in self.words)


def _tokens(text: str) -> list[_Token]:
    out = []
    for word in words(text):
        folded = _fold(word)
        out.append(_Token(word, lemma(folded), _query_stems(folded), _latin_head(folded)))
    return out


# -- public types ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SynonymMatch:
    """One group the query mentions."""

    group: int  # position of the group in the dictionary, from 0
    terms: tuple[str, ...]  # every spelling of the group
    entry: str  # the spelling that matched
    query_text: str  # the query's words that matched it
    added: tuple[str, ...]  # spellings appended to ``expanded_text``


@dataclass(frozen=True, slots=True)
class Expansion:
    """A normalised query and what the dictionary adds to it."""

    normalized: str
    added_terms: list[str]  # lemmas of the equivalents not already in the query (BM25)
    expanded_text: str  # ``normalized`` + « (equivalent, …)» (embedders)
    matched: list[SynonymMatch]


class SynonymDictionary:
    """Groups of equivalent spellings, matched on lemmas (see the module docstring)."""

    def __init__(self, groups: Sequence[Sequence[str]], *, source: str = "<synonyms>") -> None:
        if isinstance(groups, str) or not isinstance(groups, Sequence):
            raise ValueError(f"{source}: expected a list of groups, got {value_kind(groups)}")
        raw: list[RawGroup] = []
        for index, group in enumerate(groups):
            if isinstance(group, str) or not isinstance(group, Sequence):
                raise ValueError(
                    f"{source}: group {index + 1}: expected a list of spellings, "
                    f"got {value_kind(group)}"
                )
            raw.append((None, [(entry, None) for entry in group]))
        self._build(raw, source)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> SynonymDictionary:
        """The dictionary in a YAML file; cached per path until the file changes."""
        resolved = Path(path).expanduser().resolve()
        stat = resolved.stat()
        stamp = (stat.st_mtime_ns, stat.st_size)
        with _cache_lock:
            cached = _cache.get(resolved)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        dictionary = cls.__new__(cls)
        dictionary._build(read_groups(resolved), str(resolved))
        with _cache_lock:
            _cache[resolved] = (stamp, dictionary)
        return dictionary

    def _build(
        self,
        groups: list[RawGroup],
        source: str,
    ) -> None:
        self.source = source
        entries: list[_Entry] = []
        spellings: list[tuple[str, ...]] = []
        seen: dict[tuple[str, ...], tuple[int, str]] = {}
        for index, (line, raw_entries) in enumerate(groups):
            where = f"{source}: group {index + 1}" + (f" (line {line})" if line else "")
            if not raw_entries:
                raise ValueError(f"{where}: empty group")
            group_texts: list[str] = []
            for value, entry_line in raw_entries:
                at = f"{source}: group {index + 1}" + (
                    f" (line {entry_line})" if entry_line else ""
                )
                if not isinstance(value, str):
                    raise ValueError(
                        f"{at}: {value!r} is {value_kind(value)}, not a string "
                        "(quote numbers and yes/no/true/false)"
                    )
                text = normalize_chars(value)
                found = words(text)
                if not found:
                    raise ValueError(f"{at}: entry {value!r} has no words")
                entry_words = []
                for word in found:
                    folded = _fold(word)
                    entry_words.append(_Word(lemma(folded), _entry_stem(folded)))
                entry = _Entry(index, text, tuple(entry_words))
                other = seen.get(entry.lemmas)
                if other is not None:
                    other_group, other_text = other
                    whose = (
                        "an entry of the same group"
                        if other_group == index
                        else f"an entry of group {other_group + 1}"
                    )
                    raise ValueError(
                        f"{at}: duplicate entry «{text}»: same lemmas "
                        f"({' '.join(entry.lemmas)}) as «{other_text}», {whose}"
                    )
                seen[entry.lemmas] = (index, text)
                entries.append(entry)
                group_texts.append(text)
            if len(group_texts) < 2:
                raise ValueError(f"{where}: a group needs at least two spellings")
            spellings.append(tuple(group_texts))
        self._groups = tuple(spellings)
        self._entries = tuple(entries)
        self._by_group: dict[int, list[_Entry]] = {}
        self._by_lemma: dict[str, list[_Entry]] = {}
        self._by_stem: dict[str, list[_Entry]] = {}
        for entry in entries:
            self._by_group.setdefault(entry.group, []).append(entry)
            first = entry.words[0]
            self._by_lemma.setdefault(first.lemma, []).append(entry)
            if first.stem is not None:
                self._by_stem.setdefault(first.stem, []).append(entry)

    @property
    def groups(self) -> tuple[tuple[str, ...], ...]:
        """The groups' spellings (normalised like queries), in file order."""
        return self._groups

    def __len__(self) -> int:
        return len(self._groups)

    def _matches(self, tokens: list[_Token]) -> list[tuple[int, int, _Entry]]:
        """Non-overlapping (start, length, entry): longest first, then in query order, then
        the closest (lemmas before stems before Latin heads)."""
        found: list[tuple[int, int, int, _Entry]] = []
        for start, token in enumerate(tokens):
            candidates: dict[int, _Entry] = {}
            keys = [*token.stems, token.head] if token.head else token.stems
            for entry in self._by_lemma.get(token.lemma, ()):
                candidates[id(entry)] = entry
            for key in keys:
                for entry in self._by_stem.get(key, ()):
                    candidates[id(entry)] = entry
            for entry in candidates.values():
                n = len(entry.words)
                window = tokens[start : start + n]
                if len(window) < n:
                    continue
                quality = [w.match(t) for w, t in zip(entry.words, window, strict=True)]
                if all(quality):
                    found.append((start, n, sum(quality), entry))
        found.sort(key=lambda m: (-m[1], m[0], -m[2], m[3].group))
        taken: set[int] = set()
        chosen = []
        for start, n, _, entry in found:
            span = set(range(start, start + n))
            if span & taken:
                continue
            taken |= span
            chosen.append((start, n, entry))
        chosen.sort(key=lambda m: m[0])
        return chosen

    def expand(self, query: str) -> Expansion:
        """Normalise the query and add the equivalents of every group it mentions."""
        normalized = normalize_query(query)
        tokens = _tokens(normalized)
        in_query = {t.lemma for t in tokens}
        added_terms: list[str] = []
        added_texts: list[str] = []
        matched: list[SynonymMatch] = []
        groups_done: set[int] = set()
        for start, n, hit in self._matches(tokens):
            if hit.group in groups_done:
                continue
            groups_done.add(hit.group)
            added_here: list[str] = []
            for entry in self._by_group[hit.group]:
                new = [x for x in entry.lemmas if x not in in_query]
                if not new:
                    continue
                for term in new:
                    if term not in added_terms:
                        added_terms.append(term)
                # The matched spelling is in the text already (maybe inflected); its
                # lemmas still count for BM25 when the query's form lemmatises apart.
                if entry is not hit:
                    added_here.append(entry.text)
            added_texts.extend(added_here)
            matched.append(
                SynonymMatch(
                    group=hit.group,
                    terms=self._groups[hit.group],
                    entry=hit.text,
                    query_text=" ".join(t.text for t in tokens[start : start + n]),
                    added=tuple(added_here),
                )
            )
        expanded = f"{normalized} ({', '.join(added_texts)})" if added_texts else normalized
        return Expansion(
            normalized=normalized,
            added_terms=added_terms,
            expanded_text=expanded,
            matched=matched,
        )


_cache: dict[Path, tuple[tuple[int, int], SynonymDictionary]] = {}
_cache_lock = threading.Lock()
