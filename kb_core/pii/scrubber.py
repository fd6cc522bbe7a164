"""Finding and replacing personal data in Russian text, offline.

Built on presidio-analyzer with a blank Russian spaCy tokenizer (no model download) and
the recognizers in :mod:`kb_core.pii.recognizers`. Findings above the score threshold are
replaced by typed placeholders (``<PERSON>``, ``<PHONE>``, …) so the text stays readable
for retrieval; allow-listed terms are never replaced, deny-listed terms always are.
Findings carry types and offsets only: values are never returned, logged or stored.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from kb_core.settings import PiiSettings, defaults_of
from kb_core.text.limits import windows

_DEFAULT = defaults_of(PiiSettings)

log = logging.getLogger(__name__)

LANGUAGE = "ru"
# Written once, on the setting (KB_PII_ENTITIES).
DEFAULT_ENTITIES: tuple[str, ...] = tuple(defaults_of(PiiSettings)["entities"])
# Presidio's built-in entity names → the placeholders people read in the knowledge base.
PLACEHOLDER_NAMES = {
    "PHONE_NUMBER": "PHONE",
    "EMAIL_ADDRESS": "EMAIL",
    "IBAN_CODE": "IBAN",
}


# Longest piece analysed at once: far below spaCy's max_length (1,000,000), and a size
# at which one analysis stays fast; longer texts are scanned window by window.
SCAN_WINDOW_CHARS = 50_000

PLACEHOLDER_PATTERN = re.compile(r"<[A-Z_]{3,20}>")


def placeholder(entity_type: str) -> str:
    return f"<{PLACEHOLDER_NAMES.get(entity_type, entity_type)}>"


def count_placeholders(text: str) -> int:
    return len(PLACEHOLDER_PATTERN.findall(text))


@dataclass(frozen=True)
class Finding:
    """One detected piece of personal data: where and what kind, never the value."""

    entity_type: str
    start: int
    end: int
    score: float

    @property
    def kind(self) -> str:
        return PLACEHOLDER_NAMES.get(self.entity_type, self.entity_type)

    def as_json(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "start": self.start,
            "end": self.end,
            "score": round(self.score, 3),
        }


@dataclass(frozen=True)
class PiiConfig:
    entities: tuple[str, ...] = DEFAULT_ENTITIES
    threshold: float = _DEFAULT["threshold"]  # KB_PII_THRESHOLD's default
    allow: frozenset[str] = frozenset()
    allow_patterns: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    # Off only to prove the independent verifier catches what the scrubber misses.
    names: bool = True
    # Lemma hashes of the organisation's people (kb_core.pii.directory).
    directory: frozenset[str] = frozenset()

    @classmethod
    def from_file(
        cls,
        path: Path | None,
        *,
        threshold: float = 0.5,
        entities: Sequence[str] = DEFAULT_ENTITIES,
        names: bool = True,
    ) -> PiiConfig:
        data: dict[str, Any] = {}
        if path is not None and path.exists():
            data = yaml.safe_load(path.read_text("utf-8")) or {}
        return cls(
            entities=tuple(entities),
            threshold=threshold,
            allow=frozenset(str(t).casefold() for t in data.get("allow") or []),
            allow_patterns=tuple(str(p) for p in data.get("allow_patterns") or []),
            deny=tuple(str(t) for t in data.get("deny") or []),
            names=names,
        )


def _lower_lemmas(doc: Any) -> Any:
    # Presidio matches context words against token lemmas. A real lemmatizer costs as
    # much as NER here; lower-cased words plus stem-like context words (substring match)
    # find «телефона», «карты», «ИНН:» just as well.
    for token in doc:
        token.lemma_ = token.lower_
    return doc


@dataclass
class Scrubber:
    """Analyzer + replacement, built once per process (thread-safe after construction)."""

    config: PiiConfig = field(default_factory=PiiConfig)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._allow_patterns = [re.compile(p, re.IGNORECASE) for p in self.config.allow_patterns]

    @cached_property
    def analyzer(self) -> Any:
        import spacy
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.nlp_engine import SlimSpacyNlpEngine
        from spacy.language import Language

        from kb_core.pii import recognizers as r

        if "kb_lower_lemmas" not in Language.factories:
            Language.component("kb_lower_lemmas", func=_lower_lemmas)
        engine = SlimSpacyNlpEngine(
            supported_languages=[LANGUAGE], generic_tokenizer="blank", auto_download=False
        )
        engine.load()
        assert engine.nlp is not None
        nlp: spacy.language.Language = engine.nlp[LANGUAGE]
        nlp.add_pipe("kb_lower_lemmas")
        registry = RecognizerRegistry(supported_languages=[LANGUAGE])
        names = (
            (
                r.NatashaRecognizer(),
                r.InitialsRecognizer(),
                r.AddressedNameRecognizer(),
                r.MorphNameRecognizer(),
                r.InformalNameRecognizer(self.config.directory),
            )
            if self.config.names
            else ()
        )
        for recognizer in (
            *names,
            r.phone_recognizer(),
            r.email_recognizer(),
            r.inn_recognizer(),
            r.snils_recognizer(),
            r.card_recognizer(),
            r.passport_recognizer(),
            r.account_recognizer(),
            r.iban_recognizer(),
            r.deny_list_recognizer(list(self.config.deny)),
        ):
            if recognizer is not None:
                registry.add_recognizer(recognizer)
        return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=[LANGUAGE])

    @cached_property
    def entities(self) -> list[str]:
        """Configured entities that some recognizer supports (PRIVATE needs a deny-list)."""
        supported = set(self.analyzer.get_supported_entities(LANGUAGE))
        return [e for e in self.config.entities if e in supported]

    def _allowed(self, text: str) -> bool:
        value = text.strip().casefold()
        return value in self.config.allow or any(
            p.fullmatch(text.strip()) for p in self._allow_patterns
        )

    def scan(self, text: str) -> list[Finding]:
        """Personal data in ``text`` above the threshold, overlaps resolved, in order.

        Any length: a long text is analysed in windows (cut at line or word breaks)
        well below spaCy's ``max_length``, which refused a 1,000,000-character ticket
        outright; the windows' findings are put back at their offsets."""
        if not text.strip():
            return []
        kept: list[Finding] = []
        offset = 0
        for piece in windows(text, SCAN_WINDOW_CHARS):
            if piece.strip():
                with self._lock:  # spaCy pipelines and natasha models are not re-entrant
                    results = self.analyzer.analyze(
                        text=piece,
                        language=LANGUAGE,
                        entities=self.entities,
                        score_threshold=self.config.threshold,
                    )
                kept.extend(
                    Finding(res.entity_type, offset + res.start, offset + res.end, float(res.score))
                    for res in results
                    if not self._allowed(piece[res.start : res.end])
                )
            offset += len(piece)
        return _resolve_overlaps(kept, text)

    def scrub(self, text: str) -> str:
        """``text`` with every finding replaced by its placeholder; line breaks kept."""
        return replace_findings(text, self.scan(text))

    def scrub_many(self, texts: Iterable[str]) -> list[str]:
        return [self.scrub(text) for text in texts]


def _resolve_overlaps(findings: list[Finding], text: str) -> list[Finding]:
    """Merge overlapping findings into the widest span, typed by the best-scored one.

    Adjacent PERSON findings separated only by spaces («Смирнова» + «Анна») are one
    person: one placeholder reads better and says no more than two.
    """
    merged: list[Finding] = []
    for finding in sorted(findings, key=lambda f: (f.start, -f.end)):
        last = merged[-1] if merged else None
        touching = (
            last is not None
            and last.entity_type == finding.entity_type == "PERSON"
            and text[last.end : finding.start].strip(" ") == ""
            and finding.start >= last.end
        )
        if last is not None and (finding.start < last.end or touching):
            best = last if last.score >= finding.score else finding
            merged[-1] = Finding(
                best.entity_type,
                last.start,
                max(last.end, finding.end),
                max(last.score, finding.score),
            )
        else:
            merged.append(finding)
    return merged


def replace_findings(text: str, findings: Sequence[Finding]) -> str:
    """Replace each span by its placeholder, keeping any line breaks the span covered."""
    parts: list[str] = []
    cursor = 0
    for finding in sorted(findings, key=lambda f: f.start):
        if finding.start < cursor:
            continue
        parts.append(text[cursor : finding.start])
        parts.append(
            placeholder(finding.entity_type) + "\n" * text.count("\n", finding.start, finding.end)
        )
        cursor = finding.end
    parts.append(text[cursor:])
    return "".join(parts)
