"""The answer without an LLM: ranked sources, their most relevant sentences quoted, a
templated draft, recommendations per source, a category by lemma overlap.

- **Quotes**: each passage is split into sentences (razdel); the sentences sharing the
  most content lemmas (pymorphy3, ``kb_core.text.lemmas``) with the question are quoted,
  in their original order. Of a resolved ticket, the resolution part is preferred.
- **Recommendations**: «Проверьте статью …», «Похожая заявка #… решена так: …»,
  «Учтите уточнение …» — one per source, best first (wording: ``config/texts_ru.yaml``).
  Hits after the first that share no content lemma with the question are left out.
- **Category**: the category whose name shares most lemmas with the question, plus a
  smaller vote of the top hits' titles and passages; none shared: the fallback.
- **Confidence**: the top hit's score (clamped to 0..1), scaled by how much of the
  question's content the top hit covers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from razdel import sentenize

from kb_core.generation.draft import extractive_draft
from kb_core.generation.schema import BotAnswer, Source
from kb_core.models import SearchHit
from kb_core.text.lemmas import lemmas
from kb_core.texts import Texts

QUOTES_PER_SOURCE = 2
MAX_QUOTE_CHARS = 350
CATEGORY_HITS = 3  # top hits whose text votes on the category
CATEGORY_HIT_WEIGHT = 0.5

# Function words and ticket formulas: sharing them says nothing about relevance.
_STOP_WORDS = """
а без бы быть в вам вас ваш весь во вот вы где да для до добрый же за здравствуйте и из
или им их к как какой когда кто ли мой мочь мы на над не нет ни но ну о об он она они
оно от по под подсказать пожалуйста после при про с свой со спасибо так также там то
тот у уважение уже хотеть что чтобы это этот я заранее день который если ещё еще нужно
можно очень раз сейчас только
"""
STOP_LEMMAS = frozenset(_STOP_WORDS.split())
_RESOLUTION = re.compile(r"\bРешение\b")
_SPACE = re.compile(r"\s+")
_MARKER_AT_END = re.compile(r"(?<=[.:!?])\s+\d{1,2}[.)]$")
_MARKER_AT_START = re.compile(r"^\d{1,2}[.)]\s+")
_MARKER_ONLY = re.compile(r"\d{1,2}[.)]?")


@lru_cache(maxsize=4096)
def content_lemmas(text: str) -> frozenset[str]:
    """Lemmas of the words that carry meaning (function words and one-letter words out)."""
    return frozenset(lemma for lemma in lemmas(text) if len(lemma) > 1 and lemma not in STOP_LEMMAS)


def sentences(text: str) -> list[str]:
    """Sentences without list markers: razdel leaves «1.» at the end of the sentence before
    an item or alone, and a quote must not end in a marker with no item after it."""
    out = []
    for found in sentenize(_SPACE.sub(" ", text)):
        sentence = _MARKER_AT_END.sub("", _MARKER_AT_START.sub("", found.text.strip()))
        if sentence and not _MARKER_ONLY.fullmatch(sentence):
            out.append(sentence)
    return out


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit - 1)
    return text[: cut if cut > limit // 2 else limit - 1].rstrip() + "…"


def _answer_part(hit: SearchHit, text: str) -> str:
    """Of a resolved ticket, the resolution (what the agents replied), when the passage
    reaches it; otherwise the whole passage."""
    if hit.source == "pyrus":
        parts = _RESOLUTION.split(text, maxsplit=1)
        if len(parts) == 2 and parts[1].strip():
            return parts[1]
    return text


def relevant_sentences(
    text: str, question: frozenset[str], *, limit: int = QUOTES_PER_SOURCE
) -> tuple[tuple[str, ...], int]:
    """The ``limit`` sentences sharing most content lemmas with the question (in text
    order) and the best overlap; none shares any: the first sentence, overlap 0."""
    candidates = sentences(text)
    if not candidates:
        return (), 0
    scored = [(len(content_lemmas(s) & question), i) for i, s in enumerate(candidates)]
    best = sorted((item for item in scored if item[0] > 0), key=lambda x: (-x[0], x[1]))
    if not best:
        return (_cut(candidates[0], MAX_QUOTE_CHARS),), 0
    chosen = sorted(i for _, i in best[:limit])
    return tuple(_cut(candidates[i], MAX_QUOTE_CHARS) for i in chosen), best[0][0]


def quote_sources(question: str, sources: Sequence[Source]) -> tuple[Source, ...]:
    """The sources with their most relevant sentences as quotes."""
    wanted = content_lemmas(question)
    out = []
    for source in sources:
        quotes, _ = relevant_sentences(_answer_part(source.hit, source.text), wanted)
        out.append(Source(id=source.id, hit=source.hit, text=source.text, quotes=quotes))
    return tuple(out)


def categorize(
    question: str, hits: Sequence[SearchHit], categories: Sequence[str], fallback: str
) -> str:
    """The category sharing most lemmas with the question (and, less, with the top hits)."""
    wanted = content_lemmas(question)
    hit_lemmas = [content_lemmas(f"{hit.title} {hit.snippet}") for hit in hits[:CATEGORY_HITS]]
    best, best_score = fallback, 0.0
    for name in categories:
        own = content_lemmas(name)
        if not own:
            continue
        score = float(len(own & wanted))
        for rank, found in enumerate(hit_lemmas):
            score += CATEGORY_HIT_WEIGHT * len(own & found) / (rank + 1)
        if score > best_score:
            best, best_score = name, score
    return best


def confidence(question: str, top: Source | None) -> float:
    if top is None:
        return 0.0
    wanted = content_lemmas(question)
    found = content_lemmas(f"{top.hit.title} {top.text}")
    coverage = len(wanted & found) / len(wanted) if wanted else 0.0
    score = min(1.0, max(0.0, top.hit.score))
    return round(score * (0.5 + 0.5 * coverage), 2)


def recommendation(source: Source, texts: Texts) -> str:
    hit = source.hit
    quote = " ".join(source.quotes)
    if hit.source == "pyrus":
        return texts.recommend_ticket.format(id=hit.external_id, title=hit.title, quote=quote)
    if hit.source == "correction":
        return texts.recommend_correction.format(title=hit.title, quote=quote)
    return texts.recommend_article.format(title=hit.title, quote=quote)


def extractive_answer(
    question: str,
    sources: Sequence[Source],
    categories: Sequence[str],
    *,
    fallback_category: str,
    texts: Texts,
) -> tuple[BotAnswer, tuple[Source, ...]]:
    """The answer built from the sources alone, and the sources with their quotes.

    The best hit is always used; the others only when they share a content lemma with
    the question (a hit that shares none would only add noise to the recommendations).
    """
    wanted = content_lemmas(question)
    relevant = [
        source
        for rank, source in enumerate(sources)
        if rank == 0 or not wanted or wanted & content_lemmas(f"{source.hit.title} {source.text}")
    ]
    quoted = quote_sources(question, relevant)
    category = categorize(question, [s.hit for s in quoted], categories, fallback_category)
    if not quoted:
        answer = BotAnswer(
            answered=False,
            category=category,
            recommendations=[texts.no_answer_recommendation],
            draft_reply=texts.no_answer_draft,
            source_ids=[],
            confidence=0.0,
        )
        return answer, quoted
    top = quoted[0]
    draft = extractive_draft(question, quoted, texts).text
    answer = BotAnswer(
        answered=True,
        category=category,
        recommendations=[recommendation(source, texts) for source in quoted],
        draft_reply=draft,
        source_ids=[source.id for source in quoted],
        confidence=confidence(question, top),
    )
    return answer, quoted
