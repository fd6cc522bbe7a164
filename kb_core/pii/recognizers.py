"""Presidio recognizers for Russian support tickets, all offline.

- people: natasha's NER (its wheel ships the slovnet/navec weights), plus regex rules for
  surname + initials in either order, and pymorphy3's name dictionaries for what NER
  misses (lowercase «сергей петров», a lone first name in a greeting or signature);
- phones: presidio's phonenumbers-based recognizer for the RU region, trusting numbers
  written as phones;
- e-mail: presidio's pattern, without its public-suffix check (that check downloads the
  suffix list; the pattern alone is strict enough, and internal domains have no public
  suffix anyway);
- INN, SNILS and cards are accepted only with a valid check digit; passport and bank
  account numbers have none, so they need their context words (or a distinctive format)
  to pass the score threshold; IBAN uses presidio's mod-97 validation.
"""

from __future__ import annotations

import re
from functools import cached_property, lru_cache
from itertools import pairwise
from typing import Any, ClassVar

from presidio_analyzer import EntityRecognizer, Pattern, PatternRecognizer, RecognizerResult
from presidio_analyzer.nlp_engine import NlpArtifacts
from presidio_analyzer.predefined_recognizers import (
    EmailRecognizer,
    IbanRecognizer,
    PhoneRecognizer,
)

from kb_core.pii.checksums import inn_valid, luhn_valid, snils_valid

LANGUAGE = "ru"

# Context words are matched as substrings of the lower-cased words around a finding
# (presidio's default), so stems cover every grammatical form: «телефон» matches
# «телефона», «карт» matches «карты», «картой».
PHONE_CONTEXT = ["телефон", "тел", "моб", "номер", "звон", "whatsapp", "сотов", "phone"]
EMAIL_CONTEXT = ["почт", "email", "e-mail", "mail", "адрес", "пиш", "ящик"]
INN_CONTEXT = ["инн"]
SNILS_CONTEXT = ["снилс", "страхов"]
PASSPORT_CONTEXT = ["паспорт", "серия", "серии", "номер", "выдан"]
CARD_CONTEXT = ["карт", "card", "visa", "mastercard", "мир", "оплат", "списа"]
ACCOUNT_CONTEXT = ["счёт", "счет", "р/с", "расчётн", "расчетн", "лицев", "реквизит"]


@lru_cache(maxsize=1)
def morph() -> Any:
    import pymorphy3

    return pymorphy3.MorphAnalyzer(lang="ru")


_NAME_TAGS = ("Name", "Surn", "Patr")
_NOT_A_NAME_POS = frozenset(
    {"VERB", "INFN", "PRTF", "PRTS", "GRND", "ADVB", "CONJ", "PREP", "NPRO", "PRCL", "INTJ"}
)
_TOKEN = re.compile(r"\S+")


@lru_cache(maxsize=200_000)
def could_be_name(word: str, sentence_initial: bool) -> bool:
    """False for words that are surely not part of a name.

    Verbs, pronouns, participles and the like never are. A known common noun or
    adjective without any name reading is not a name when it opens a sentence (NER
    models take any capitalised first word for a name: «Бот создаёт…», «Токен истёк»);
    inside a sentence its capital letter is evidence enough, because many surnames are
    also words («Пестова», «Белых»). Unknown words (rare surnames) pass.
    """
    core = word.strip(".,;:!?«»\"'()[]{}")
    if not core or not core[0].isalpha():
        return False
    if "-" in core.strip("-"):
        # «Голубева-Крайнова» is a name; «Письмо-уведомление», «ИТ-отдела» are not.
        return all(could_be_name(part, sentence_initial) for part in core.split("-") if part)
    parses = morph().parse(core)
    if any(tag in p.tag for p in parses for tag in (*_NAME_TAGS, "Geox")):
        return True
    top = parses[0]
    if top.tag.POS in _NOT_A_NAME_POS:
        return False
    if sentence_initial and top.is_known and top.tag.POS in ("NOUN", "ADJF"):
        return False
    return not (top.is_known and top.tag.POS == "NOUN" and "inan" in top.tag)


_SENTENCE_END = re.compile(r"(?:^|[.!?:;\n…—]\s*)$")


def person_pieces(text: str, start: int, stop: int) -> list[tuple[int, int]]:
    """A NER person span trimmed to its name-like words (NER models glue a neighbouring
    capitalised word to a name: «Передайте Тарасу», or take «Бот» for a surname).
    Initials count only next to a name word."""
    tokens = [
        (m.start() + start, m.end() + start, m.group()) for m in _TOKEN.finditer(text[start:stop])
    ]
    keep = [
        could_be_name(word, bool(_SENTENCE_END.search(text[max(0, s - 3) : s])))
        and len(word.strip(".")) > 1
        for s, _, word in tokens
    ]
    if any(keep):
        keep = [
            k or bool(re.fullmatch(r"[А-ЯЁA-Z]\.?", w.rstrip(",;")))
            for k, (_, _, w) in zip(keep, tokens, strict=True)
        ]
    pieces: list[tuple[int, int]] = []
    for kept, (s, e, _) in zip(keep, tokens, strict=True):
        if not kept:
            continue
        if pieces and not text[pieces[-1][1] : s].strip():
            pieces[-1] = (pieces[-1][0], e)
        else:
            pieces.append((s, e))
    return pieces


def _without_word_names(text: str, pieces: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Drop a lone word that opens a sentence and is as often a common word as a name:
    «Вера в успех…», «Роза ветров…» (NER takes any capitalised first word for a name)."""
    from kb_core.pii.names import ambiguous

    kept = []
    for start, stop in pieces:
        word = text[start:stop]
        opens = bool(_SENTENCE_END.search(text[max(0, start - 3) : start]))
        if opens and " " not in word and ambiguous(word, first_name_only=True):
            continue
        kept.append((start, stop))
    return kept


class NatashaRecognizer(EntityRecognizer):
    """Names, places and organisations from natasha's Russian NER."""

    ENTITY_MAP: ClassVar[dict[str, str]] = {
        "PER": "PERSON",
        "LOC": "LOCATION",
        "ORG": "ORGANIZATION",
    }

    def __init__(self, score: float = 0.85) -> None:
        self.score = score
        super().__init__(
            supported_entities=list(self.ENTITY_MAP.values()),
            supported_language=LANGUAGE,
            name="NatashaRecognizer",
        )

    def load(self) -> None:
        """Models load lazily (first analysis), so building an engine stays cheap."""

    @cached_property
    def _tagger(self) -> Any:
        from natasha import NewsEmbedding, NewsNERTagger

        return NewsNERTagger(NewsEmbedding())

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        if not text.strip():
            return []
        # The tagger tokenises on its own: going through natasha's Doc (segmenting into
        # tokens and sentences with razdel) would cost a third of the scrubber's time.
        markup = self._tagger(text)
        results: list[RecognizerResult] = []
        for span in markup.spans:
            entity = self.ENTITY_MAP.get(span.type)
            if entity not in entities:
                continue
            pieces = (
                _without_word_names(text, person_pieces(text, span.start, span.stop))
                if entity == "PERSON"
                else [(span.start, span.stop)]
            )
            results.extend(
                RecognizerResult(entity, start, stop, self.score, self._explain())
                for start, stop in pieces
            )
        return results

    def _explain(self) -> Any:
        from presidio_analyzer import AnalysisExplanation

        return AnalysisExplanation(
            "NatashaRecognizer", self.score, textual_explanation="natasha NER"
        )


_UPPER = "А-ЯЁ"
_LOWER = "а-яё"
_SURNAME = rf"[{_UPPER}][{_LOWER}]+(?:-[{_UPPER}][{_LOWER}]+)?"
_INITIALS = rf"[{_UPPER}]\.\s?(?:[{_UPPER}]\.)?"


class InitialsRecognizer(PatternRecognizer):
    """«Котов А. В.», «А.В. Котов»: a capitalised word next to initials is a person."""

    def __init__(self) -> None:
        super().__init__(
            supported_entity="PERSON",
            supported_language=LANGUAGE,
            name="InitialsRecognizer",
            # Case matters here (presidio's default flags include IGNORECASE).
            global_regex_flags=re.MULTILINE,
            patterns=[
                Pattern(
                    "surname_initials", rf"(?<![{_UPPER}{_LOWER}]){_SURNAME}\s+{_INITIALS}", 0.85
                ),
                Pattern(
                    "initials_surname", rf"(?<![{_UPPER}{_LOWER}]){_INITIALS}\s?{_SURNAME}", 0.85
                ),
            ],
        )


class AddressedNameRecognizer(PatternRecognizer):
    """The name right after a greeting or a sign-off: «Здравствуйте, Роман!»."""

    def __init__(self) -> None:
        super().__init__(
            supported_entity="PERSON",
            supported_language=LANGUAGE,
            name="AddressedNameRecognizer",
            global_regex_flags=re.MULTILINE,
            patterns=[
                Pattern(
                    "greeting_name",
                    r"(?<=(?:Здравствуйте|Добрый\s(?:день|вечер)|Доброе\sутро|Привет|"
                    r"Уважаем(?:ый|ая)|С\sуважением),?\s{1,3})"
                    rf"[{_UPPER}][{_LOWER}]+(?:\s[{_UPPER}][{_LOWER}]+){{0,2}}",
                    0.7,
                )
            ],
        )


class MorphNameRecognizer(EntityRecognizer):
    """People that NER misses, found with pymorphy3's name dictionaries.

    - «сергей петров»: users type names in lower case, which NER models trained on
      edited news never see; a first name next to a surname or patronymic is a person
      (requiring the pair keeps «вера», «роза» as words);
    - «Здравствуйте, Галина!», «С уважением, Ольга»: a capitalised word whose most
      likely reading is a first name, surname or patronymic.
    """

    _WORD = re.compile(rf"[{_LOWER}{_UPPER}]+")

    def __init__(self, pair_score: float = 0.75, word_score: float = 0.6) -> None:
        self.pair_score = pair_score
        self.word_score = word_score
        super().__init__(
            supported_entities=["PERSON"], supported_language=LANGUAGE, name="MorphNames"
        )

    def load(self) -> None:
        """pymorphy3 loads lazily."""

    @cached_property
    def _kind(self) -> Any:
        # pymorphy3 parsing dominates this recognizer's cost; support text repeats the
        # same words endlessly, so a per-process cache makes it almost free.
        @lru_cache(maxsize=200_000)
        def kind(word: str, lone: bool) -> str | None:
            if len(word) < 3:
                return None
            parses = morph().parse(word)
            if lone:
                # A lone capitalised word counts when the dictionary knows it and most
                # of its readings are name readings («Мартынова»: three surname cases),
                # and, for a first name, it is not as often a word («Роза ветров»).
                # pymorphy3 guesses tags for unknown words («Токен» → a first name), so
                # guesses never count.
                from kb_core.pii.names import cyrillic_name_kind

                sure = cyrillic_name_kind(word)
                return "surname" if sure == "patronymic" else sure
            for parse in parses[:2]:
                tags = parse.tag
                if "Name" in tags:
                    return "name"
                if "Surn" in tags or "Patr" in tags:
                    return "surname"
            return None

        return kind

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        if "PERSON" not in entities:
            return []
        from kb_core.pii.names import ambiguous

        kind = self._kind
        words = list(self._WORD.finditer(text))
        results = []
        for word in words:
            value = word.group()
            if value[0].isupper() and value[1:].islower() and kind(value, True):
                results.append(
                    RecognizerResult("PERSON", word.start(), word.end(), self.word_score)
                )
        lower = [w for w in words if w.group().islower()]
        for first, second in pairwise(lower):
            if text[first.end() : second.start()].strip():
                continue
            if ambiguous(first.group()) and ambiguous(second.group()):
                continue  # «роза ветров»: a flower and winds, not Roza Vetrov
            if {kind(first.group(), False), kind(second.group(), False)} == {"name", "surname"}:
                results.append(
                    RecognizerResult("PERSON", first.start(), second.end(), self.pair_score)
                )
        return results


def _checked(
    name: str, entity: str, patterns: list[Pattern], context: list[str], check: Any
) -> PatternRecognizer:
    class Checked(PatternRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return bool(check(pattern_text))

    return Checked(
        supported_entity=entity,
        supported_language=LANGUAGE,
        name=name,
        patterns=patterns,
        context=context,
    )


def inn_recognizer() -> PatternRecognizer:
    return _checked(
        "InnRecognizer",
        "INN",
        [Pattern("inn", r"(?<!\d)(?:\d{10}|\d{12})(?!\d)", 0.5)],
        INN_CONTEXT,
        inn_valid,
    )


def snils_recognizer() -> PatternRecognizer:
    return _checked(
        "SnilsRecognizer",
        "SNILS",
        [Pattern("snils", r"(?<!\d)\d{3}[- ]?\d{3}[- ]?\d{3}[- ]?\d{2}(?!\d)", 0.5)],
        SNILS_CONTEXT,
        snils_valid,
    )


def card_recognizer() -> PatternRecognizer:
    # presidio's own credit-card pattern wants a known BIN prefix; Russian МИР cards
    # (2200–2204) and many test-looking numbers fall outside it, so any 16–19 digit
    # grouping with a valid Luhn digit counts.
    return _checked(
        "CardRecognizer",
        "CARD",
        [
            Pattern("card_grouped", r"(?<!\d)\d{4}(?:[ -]\d{4}){3}(?:[ -]\d{1,3})?(?!\d)", 0.5),
            Pattern("card_plain", r"(?<!\d)\d{16,19}(?!\d)", 0.4),
        ],
        CARD_CONTEXT,
        luhn_valid,
    )


def passport_recognizer() -> PatternRecognizer:
    return PatternRecognizer(
        supported_entity="PASSPORT",
        supported_language=LANGUAGE,
        name="PassportRecognizer",
        patterns=[
            # Written as series and number («45 08 123456», «4508 123456») the format is
            # distinctive; ten bare digits could be anything and need a context word.
            Pattern("series_spaced", r"(?<!\d)\d{2}\s?\d{2}\s(?:№\s?)?\d{6}(?!\d)", 0.5),
            Pattern("series_number", r"(?<!\d)\d{10}(?!\d)", 0.3),
            Pattern("series_word_number", r"(?<!\d)\d{4}\s*(?:номер|№|N)\s*\d{6}(?!\d)", 0.6),
        ],
        context=PASSPORT_CONTEXT,
    )


def account_recognizer() -> PatternRecognizer:
    # Russian settlement accounts: 20 digits, balance account class first (301…479).
    return PatternRecognizer(
        supported_entity="ACCOUNT",
        supported_language=LANGUAGE,
        name="AccountRecognizer",
        patterns=[
            Pattern("account", r"(?<!\d)[34](?:[ -]?\d){19}(?!\d)", 0.6),
        ],
        context=ACCOUNT_CONTEXT,
    )


class OfflineEmailRecognizer(EmailRecognizer):
    def validate_result(self, pattern_text: str) -> bool:
        domain = pattern_text.rpartition("@")[2]
        return "." in domain and not domain.startswith(".") and not domain.endswith(".")


class RussianPhoneRecognizer(PhoneRecognizer):
    """phonenumbers' matcher for the RU region, scored by how the number is written.

    A number written as a phone (``+7``, brackets, dashes, spaces) that phonenumbers
    accepts as valid is a phone even with no «тел.» nearby — signatures rarely have one.
    A bare run of digits gets the low base score and needs a context word.
    """

    FORMATTED_SCORE = 0.65
    # Written like a phone: punctuation/spaces, or a bare Russian mobile (8/7 then 9…).
    _FORMATTING = re.compile(r"[+()\-\s]|^[78]9\d{9}$")

    def _get_recognizer_result(
        self, match: Any, text: str, region: str, nlp_artifacts: NlpArtifacts | None
    ) -> RecognizerResult:
        result: RecognizerResult = super()._get_recognizer_result(  # type: ignore[no-untyped-call]
            match, text, region, nlp_artifacts
        )
        if self._FORMATTING.search(text[match.start : match.end]):
            result.score = self.FORMATTED_SCORE
        return result


def phone_recognizer() -> PhoneRecognizer:
    return RussianPhoneRecognizer(
        supported_language=LANGUAGE, supported_regions=("RU",), context=PHONE_CONTEXT
    )


def email_recognizer() -> EmailRecognizer:
    return OfflineEmailRecognizer(supported_language=LANGUAGE, context=EMAIL_CONTEXT)


def iban_recognizer() -> IbanRecognizer:
    return IbanRecognizer(supported_language=LANGUAGE, context=[*ACCOUNT_CONTEXT, "iban"])


def deny_list_recognizer(terms: list[str]) -> PatternRecognizer | None:
    if not terms:
        return None
    return PatternRecognizer(
        supported_entity="PRIVATE",
        supported_language=LANGUAGE,
        name="DenyListRecognizer",
        deny_list=terms,
        deny_list_score=1.0,
    )


__all__ = [
    "AddressedNameRecognizer",
    "InitialsRecognizer",
    "MorphNameRecognizer",
    "NatashaRecognizer",
    "account_recognizer",
    "card_recognizer",
    "deny_list_recognizer",
    "email_recognizer",
    "iban_recognizer",
    "inn_recognizer",
    "passport_recognizer",
    "phone_recognizer",
    "snils_recognizer",
]


_ANY_WORD = re.compile(r"[A-Za-zА-Яа-яЁё]+(?:-[A-Za-zА-Яа-яЁё]+)?")
# Initials in any case and with or without a space: «а.в.», «А. В.», «a.v.».
_ANY_INITIALS = re.compile(r"(?<![\w.])[A-Za-zА-Яа-яЁё]\.\s?(?:[A-Za-zА-Яа-яЁё]\.)?(?![\w])")
# Abbreviations written like initials that are not: «т.е.», «т.к.», «и.о.», «т.д.».
_NOT_INITIALS = frozenset({"т.е.", "т.к.", "т.д.", "т.п.", "т.ч.", "и.о.", "н.э.", "e.g.", "i.e."})
# Sign-offs after which the next words are the writer's name.
_SIGN_OFF = re.compile(
    r"(?:с\s+уважением|уважением|спасибо(?:\s+заранее)?|заранее\s+спасибо|благодарю|"
    r"best\s+regards|kind\s+regards|regards|thanks|thank\s+you|cheers|"
    r"^\s*--+|^\s*—)[\s,.!:]*",
    re.IGNORECASE | re.MULTILINE,
)
# A login or mailbox-like token: letters with dots, underscores, dashes or digits.
_LOGIN = re.compile(
    r"(?<![\w@.])[A-Za-z][A-Za-z0-9]*(?:[._\-][A-Za-z0-9]+)+(?![\w@])|"
    r"(?<![\w@.])[A-Za-z]{4,}\d+(?![\w@])"
)


# A line that is only one to three words (and maybe a full stop): a signature candidate.
_NAME_LINE = re.compile(r"\s*[A-Za-zА-Яа-яЁё-]+(?:\s+[A-Za-zА-Яа-яЁё.-]+){0,2}[.!]?\s*")
# A capitalised word opening a line or sentence, followed by a comma or «!».
_ADDRESSED = re.compile(r"(?:^|(?<=[.!?]\s))\s*([А-ЯЁA-Z][а-яёa-z]+)(?=\s*[,!])", re.MULTILINE)


class InformalNameRecognizer(EntityRecognizer):
    """Names as customers write them, whatever the capitals or the script.

    - any word whose dictionary readings are mostly a first name, surname or patronymic,
      in any case and form («наталья», «кузнецову», «Наташе») or transliterated from
      Latin script («Kirill», «Anton Volkov»): kb_core.pii.names;
    - any case form of a name in the organisation's directory (hashed lemmas);
    - words that may be names but are also words («вера», «роза», «лев») only in a name
      position: next to a sure name or initials, after a sign-off («С уважением»,
      «Best regards», «--») or as the whole last line of a message;
    - initials in any case next to a possible name («смирнова а.в.»);
    - logins and mailbox names built from a name («a.volkov», «volkov_a», «ivanova77»).
    """

    def __init__(self, directory: frozenset[str] = frozenset(), score: float = 0.7) -> None:
        self.directory = directory
        self.score = score
        super().__init__(
            supported_entities=["PERSON"], supported_language=LANGUAGE, name="InformalNames"
        )

    def load(self) -> None:
        """pymorphy3 loads lazily."""

    def _sure(self, word: str) -> bool:
        from kb_core.pii.names import in_directory, is_latin, name_kind

        if in_directory(word, self.directory):
            return True
        if is_latin(word):
            # Lower-case Latin words are mostly technical terms; a capitalised one that
            # reads as a Russian name is a person, and so is a long lower-case one that
            # reads as a surname («kuznetsova»).
            kind = name_kind(word)
            if word[:1].isupper():
                return kind is not None
            return kind == "surname" and len(word) >= 6
        return name_kind(word) is not None

    def _possible(self, word: str) -> bool:
        from kb_core.pii.names import could_be_name

        return could_be_name(word)

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        if "PERSON" not in entities:
            return []
        words = list(_ANY_WORD.finditer(text))
        spans: list[tuple[int, int]] = []
        sure = [self._sure(w.group()) for w in words]
        for word, is_sure in zip(words, sure, strict=True):
            if is_sure:
                spans.append((word.start(), word.end()))
        # A possible name next to a sure one: «вера петрова», «Лев Уткин».
        from kb_core.pii.names import ambiguous

        for (first, a), (second, b) in pairwise(zip(words, sure, strict=True)):
            if a == b or text[first.end() : second.start()].strip(" "):
                continue
            if ambiguous((first if a else second).group()):
                continue  # «роза ветров»: two words that may both be names are words
            other = second if a else first
            if self._possible(other.group()):
                spans.append((other.start(), other.end()))
        spans.extend(self._initials(text))
        spans.extend(self._signatures(text))
        spans.extend(self._logins(text))
        # The sign-off itself is never a name («Best regards» → «Бест»).
        sign_offs = [m.span() for m in _SIGN_OFF.finditer(text)]
        return [
            RecognizerResult("PERSON", s, e, self.score)
            for s, e in spans
            if not any(a <= s and e <= b for a, b in sign_offs)
        ]

    def _initials(self, text: str) -> list[tuple[int, int]]:
        spans = []
        for match in _ANY_INITIALS.finditer(text):
            if match.group().replace(" ", "").lower() in _NOT_INITIALS:
                continue
            before = re.search(
                r"([A-Za-zА-Яа-яЁё-]{2,})\s*$", text[max(0, match.start() - 40) : match.start()]
            )
            after = re.match(r"\s*([A-Za-zА-Яа-яЁё-]{2,})", text[match.end() : match.end() + 40])
            for neighbour, start, end in (
                (before, match.start() - len(before.group()) if before else 0, match.end()),
                (after, match.start(), match.end() + len(after.group()) if after else 0),
            ):
                if neighbour and self._possible(neighbour.group(1)):
                    spans.append((start, end))
                    break
        return spans

    def _signatures(self, text: str) -> list[tuple[int, int]]:
        spans = []
        for match in _SIGN_OFF.finditer(text):
            tail = re.match(
                r"((?:[A-Za-zА-Яа-яЁё-]+\.?\s?){1,3})", text[match.end() : match.end() + 60]
            )
            if tail:
                spans.extend(self._name_words(tail.group(1), match.end()))
        lines = [m for m in re.finditer(r"[^\n]+", text) if m.group().strip()]
        if len(lines) > 1 or (lines and len(lines[0].group().split()) > 3):
            # A line of one to three words, each of which may be a name, is a signature
            # wherever it stands (the end of the customer's part of a thread is not the
            # end of the document): «…непонятные символы.\nСтарикова\n\n## Решение».
            for line in lines:
                if _NAME_LINE.fullmatch(line.group()) and all(
                    self._possible(w.group()) or self._sure(w.group())
                    for w in _ANY_WORD.finditer(line.group())
                ):
                    spans.extend(self._name_words(line.group(), line.start()))
        # A name addressed at the start of a line or sentence: «Максим, да: …».
        for match in _ADDRESSED.finditer(text):
            if self._possible(match.group(1)):
                spans.append(match.span(1))
        if len(lines) > 1 or (lines and len(lines[0].group().split()) > 3):
            # The last word of a message after its last sentence: «…помогите. ольга».
            end = re.search(r"[.!?]\s+([A-Za-zА-Яа-яЁё-]+)[.!]?\s*$", text)
            if end:
                spans.extend(self._name_words(end.group(1), end.start(1)))
        return spans

    def _name_words(self, phrase: str, offset: int) -> list[tuple[int, int]]:
        found = [
            (offset + w.start(), offset + w.end())
            for w in _ANY_WORD.finditer(phrase)
            if self._possible(w.group()) or self._sure(w.group())
        ]
        return found

    def _logins(self, text: str) -> list[tuple[int, int]]:
        from kb_core.pii.names import name_kind

        spans = []
        for match in _LOGIN.finditer(text):
            parts = [p for p in re.split(r"[._\-\d]+", match.group()) if p]
            for part in parts:
                # «avolkov»: an initial glued to a surname.
                glued = len(part) >= 7 and name_kind(part[1:]) == "surname"
                if (len(part) >= 4 and name_kind(part) is not None) or glued:
                    spans.append((match.start(), match.end()))
                    break
        return spans
