"""One console question: search with the engineer's settings, then draft the answer.

The same search and generation as the bot's, so what an engineer sees here is what the
bot would write in a ticket, with every knob of the search exposed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import psycopg

from kb_core.embeddings import Embedder
from kb_core.generation import GenerationOptions, generate
from kb_core.generation.llm import ChatClient
from kb_core.generation.rerank import AnswerSteps
from kb_core.generation.schema import GeneratedAnswer
from kb_core.models import SearchHit
from kb_core.search import SearchScope, options_from_settings
from kb_core.search import search as search_kb
from kb_core.search.hybrid import Mode, SearchOptions
from kb_core.settings import Settings
from kb_core.texts import Texts


@dataclass(frozen=True)
class ConsoleQuery:
    question: str
    mode: Mode | None = None  # None: as configured (KB_SEARCH_MODE)
    k: int = 5
    min_score: float | None = None  # None: as configured (KB_SEARCH_MIN_SCORE)
    expand: bool | None = None  # query expansion; None: as configured
    version: int | None = None  # None: the active version
    opt_query: bool | None = None  # issue 23: LLM query optimisation; None: as configured
    rerank: bool | None = None  # issue 23: LLM / cross-encoder reranking; None: as configured
    # issue 25: the signed-in reader's groups; None only for trusted internal callers
    reader_groups: frozenset[str] | None = None
    scope: SearchScope | None = None  # issue 24: sources / spaces / forms (None: all)


@dataclass(frozen=True)
class ConsoleAnswer:
    question: str  # as searched: scrubbed of personal data
    hits: list[SearchHit]
    generated: GeneratedAnswer | None  # None: nothing found, nothing to draft from
    search_ms: float
    answer_ms: float


def search_options(settings: Settings, query: ConsoleQuery, *, snippet_chars: int) -> SearchOptions:
    """The configured search options with the engineer's choices on top."""
    options = options_from_settings(
        settings,
        mode=query.mode,
        k=query.k,
        min_score=query.min_score,
        version=query.version,
        snippet_chars=snippet_chars,
        reader_groups=query.reader_groups,
        scope=query.scope,
    )
    if query.expand is not None:
        options = replace(
            options, synonyms_path=settings.search.synonyms_path if query.expand else None
        )
    return options


def ask(
    conn: psycopg.Connection[Any],
    embedder: Embedder,
    settings: Settings,
    query: ConsoleQuery,
    *,
    llm: ChatClient | None,
    categories: Sequence[str],
    texts: Texts,
    scrub: Callable[[str], str],
) -> ConsoleAnswer:
    """Search, then answer from the hits as the bot would (the question scrubbed first:
    an engineer may paste a customer's message, and the LLM must not see its PII)."""
    question = scrub(query.question)
    started = time.perf_counter()
    # Generation reads the hit's text: give it the whole chunk, not a preview.
    options = search_options(settings, query, snippet_chars=settings.chunking.size + 200)
    steps = AnswerSteps.from_settings(settings)
    if query.opt_query is not None:
        steps = replace(steps, opt_query=query.opt_query)
    if query.rerank is not None:
        steps = replace(
            steps,
            llm_rerank=query.rerank and (settings.llm.rerank or steps.reranker is None),
            reranker=steps.reranker if query.rerank else None,
        )
    hits = search_kb(conn, embedder, steps.query(llm, question), options)
    hits = steps.rerank(llm, question, hits)
    searched = time.perf_counter()
    generated = (
        generate(
            question,
            hits,
            list(categories),
            llm,
            options=GenerationOptions.from_settings(settings),
            texts=texts,
        )
        if hits
        else None
    )
    done = time.perf_counter()
    return ConsoleAnswer(
        question=question,
        hits=hits,
        generated=generated,
        search_ms=(searched - started) * 1000,
        answer_ms=(done - searched) * 1000,
    )
