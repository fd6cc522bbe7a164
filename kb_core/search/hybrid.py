"""Search over the knowledge base: vector, lexical (BM25) or both fused.

Hybrid takes the top candidates of each half and fuses them per document
(``kb_core.search.fusion``: weighted min-max or reciprocal rank fusion). Results are
documents, each with its best chunk; every hit explains itself: its vector and lexical
scores, the final score, the boosts, the expansion and the index version it was read from.

``search`` is a pipeline of named stages, as Onyx's search pipeline is, so each decision
has one place and one docstring: :func:`prepare_query` → :func:`vectors_usable` (the
model-mismatch policy) → :func:`retrieve` → :func:`rank_documents` → :func:`best_chunks`
→ ``kb_core.search.hits.load_hits``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import psycopg

from kb_core.embeddings.base import Embedder
from kb_core.errors import KbError
from kb_core.index.versions import VersionInfo, active_version, get_version
from kb_core.models import SearchHit
from kb_core.ops.metrics import timed_call
from kb_core.search.boosts import NO_BOOSTS, Boosts, document_boosts
from kb_core.search.candidates import Candidate
from kb_core.search.fusion import best_per_document, fuse
from kb_core.search.hits import load_hits
from kb_core.search.lexical import POSTINGS_PER_TERM, bm25_candidates
from kb_core.search.scope import SCOPE_POOL_FACTOR, SearchScope, documents_in_scope
from kb_core.search.synonyms import Expansion, SynonymDictionary
from kb_core.search.vector import vector_candidates
from kb_core.settings import BoostSettings, SearchSettings, Settings, defaults_of

log = logging.getLogger(__name__)

Mode = Literal["hybrid", "vector", "lexical"]
Fusion = Literal["weighted", "rrf"]
MODES: tuple[Mode, ...] = ("hybrid", "vector", "lexical")


# every configurable option defaults to its setting's default, written once on the setting
_DEFAULT = defaults_of(SearchSettings)


@dataclass(frozen=True)
class SearchOptions:
    """One search's options. The configurable ones default to their setting's default
    (KB_SEARCH_*, written once, in kb_core.settings); ``from_settings`` takes the
    configured values."""

    mode: Mode = _DEFAULT["mode"]
    k: int = 10
    fusion: Fusion = _DEFAULT["fusion"]
    # Weights chosen by measurement (docs/retrieval.md): on XQuAD-ru and the golden
    # set a broad plateau around 0.4 vector / 0.6 lexical beats either half alone.
    alpha: float = _DEFAULT["alpha"]  # vector weight; lexical gets 1 - alpha
    short_query_words: int = 3
    short_query_lexical_weight: float = _DEFAULT["short_query_lexical_weight"]
    rrf_k: int = 60
    candidates: int = _DEFAULT["candidates"]  # per half, before fusion
    min_score: float = _DEFAULT["min_score"]  # relevance threshold on the final score
    ef_search: int = _DEFAULT["ef_search"]
    snippet_chars: int = _DEFAULT["snippet_chars"]
    namespace: str = "kb"
    version: int | None = None  # None: the namespace's active version
    postings_per_term: int = POSTINGS_PER_TERM
    boosts: Boosts = NO_BOOSTS
    synonyms_path: Path | None = None  # query expansion dictionary (None: off)
    expansion_weight: float = _DEFAULT["expansion_weight"]  # of an added synonym's BM25 share
    # issue 25: the reader's groups; only documents they may read are found (None: no
    # permission filter, for the pipeline and evaluation). Kept apart from any scope.
    reader_groups: frozenset[str] | None = None
    scope: SearchScope | None = None  # issue 24: sources / spaces / forms (None: all)

    @classmethod
    def from_settings(
        cls, search: SearchSettings, boosts: BoostSettings, **overrides: Any
    ) -> SearchOptions:
        """Search options as configured (KB_SEARCH_*, KB_BOOST_*), with per-call overrides
        (None: keep the configured value)."""
        base = cls(
            mode=search.mode,
            fusion=search.fusion,
            alpha=search.alpha,
            short_query_lexical_weight=search.short_query_lexical_weight,
            candidates=search.candidates,
            min_score=search.min_score,
            ef_search=search.ef_search,
            snippet_chars=search.snippet_chars,
            postings_per_term=search.postings_per_term,
            boosts=Boosts.from_settings(boosts),
            synonyms_path=search.synonyms_path if search.expand_query else None,
            expansion_weight=search.expansion_weight,
        )
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def resolve_version(conn: psycopg.Connection[Any], options: SearchOptions) -> VersionInfo:
    """The version a search reads: the one asked for, else the active one."""
    if options.version is not None:
        version = get_version(conn, options.version)
        if version.namespace != options.namespace:
            raise ValueError(f"index version {version.id} belongs to {version.namespace!r}")
        return version
    return active_version(conn, options.namespace)


def search(
    conn: psycopg.Connection[Any],
    embedder: Embedder,
    query: str,
    options: SearchOptions | None = None,
) -> list[SearchHit]:
    """The top ``options.k`` documents for ``query``, each with its best chunk.

    Reads one index version (the active one unless asked otherwise), resolved once, so a
    promotion during the search cannot mix versions. Ranking is per document: a
    document's vector and lexical scores are those of its best chunks, which may differ
    (one chunk matches the wording, another the meaning); fusing per chunk would split
    that evidence. The chunk shown is the document's best by the same fused score.
    Boosts multiply the document's score. Raises NoActiveVersion before the first
    promotion.

    A pipeline of named stages, each below with why it is what it is: prepare the
    query, decide whether vectors can be compared (model-mismatch policy), retrieve
    candidates, rank documents, pick each document's best chunk, load the hits.
    """
    options = _checked(options or SearchOptions())
    version = resolve_version(conn, options)
    prepared = prepare_query(query, options)
    use_vectors = vectors_usable(version, embedder, options.mode)
    found = retrieve(conn, embedder, prepared, version, options, use_vectors=use_vectors)
    ranked, boosts = rank_documents(conn, found, prepared.text, version.id, options)
    chunk_of = best_chunks(found, prepared.text, options)
    hits = load_hits(
        conn,
        [(chunk_of[doc], doc, score) for doc, score in ranked],
        found.vector_scores,
        found.lexical_scores,
        options.snippet_chars,
    )
    return [
        replace(
            hit,
            boosts=boosts.get(hit.document_id, {}),
            version_id=version.id,
            expansion=prepared.added_terms,
        )
        for hit in hits
    ]


class ModelMismatch(KbError, RuntimeError):
    """The index version's vectors come from another model than the query embedder."""


def _checked(options: SearchOptions) -> SearchOptions:
    """Options refused before any database work: a caller's mistake, not a search miss."""
    if options.k <= 0:
        raise ValueError("k must be positive")
    if options.mode not in MODES:
        raise ValueError(f"unknown search mode {options.mode!r}")
    return options


@dataclass(frozen=True)
class PreparedQuery:
    """The query in the forms the stages need.

    ``typed`` goes to the embedder as written: normalising it was measured to cost
    vector quality (XQuAD-ru MRR@10 0.883 → 0.877), and embedders handle synonyms.
    ``text`` (normalised when expansion is on) feeds BM25, fusion's word count and the
    title boost; ``expansion`` adds the synonyms' lemmas to BM25.
    """

    typed: str
    text: str
    expansion: Expansion | None
    pool: int  # candidates per retriever

    @property
    def added_terms(self) -> tuple[str, ...]:
        return tuple(self.expansion.added_terms) if self.expansion is not None else ()


def prepare_query(query: str, options: SearchOptions) -> PreparedQuery:
    """Expansion (when a synonym dictionary is configured) and the candidate pool.

    The pool is at least ``k`` and grows by :data:`SCOPE_POOL_FACTOR` under a scope: a
    narrow scope filters most candidates out after retrieval, so more are fetched first.
    """
    expansion = (
        SynonymDictionary.load(options.synonyms_path).expand(query)
        if options.synonyms_path is not None
        else None
    )
    pool = max(options.k, options.candidates)
    if _scoped(options):
        pool *= SCOPE_POOL_FACTOR
    text = expansion.normalized if expansion is not None else query
    return PreparedQuery(typed=query, text=text, expansion=expansion, pool=pool)


def vectors_usable(version: VersionInfo, embedder: Embedder, mode: Mode) -> bool:
    """The model-mismatch policy: whether this search compares query and index vectors.

    Vectors of two models are not comparable. Vector mode cannot do without them and
    fails with a way out in the message. Between a model change's promotion and the
    reader's restart (or the reverse), hybrid degrades to its lexical half instead of
    failing or comparing vectors of two models; every hit then shows the missing vector
    score. Lexical mode never uses vectors.
    """
    model_matches = version.embedding_model == embedder.model_id
    if mode == "vector" and not model_matches:
        raise ModelMismatch(
            f"index version {version.id} holds vectors of {version.embedding_model}, "
            f"queries are embedded with {embedder.model_id}: promote a version built "
            "with the configured model, or search in lexical mode"
        )
    if mode == "hybrid" and not model_matches:
        log.warning(
            "index version %s holds vectors of %s, queries use %s: lexical results only",
            version.id,
            version.embedding_model,
            embedder.model_id,
        )
    return mode in ("hybrid", "vector") and model_matches


@dataclass(frozen=True)
class Retrieved:
    """Each retriever's candidate chunks, best first, already limited to the scope."""

    vector: list[Candidate]
    lexical: list[Candidate]

    @cached_property
    def vector_scores(self) -> dict[int, float]:
        """Per document: the score of its best vector chunk."""
        return {doc: c.score for doc, c in best_per_document(self.vector).items()}

    @cached_property
    def lexical_scores(self) -> dict[int, float]:
        """Per document: the score of its best lexical chunk."""
        return {doc: c.score for doc, c in best_per_document(self.lexical).items()}


def retrieve(
    conn: psycopg.Connection[Any],
    embedder: Embedder,
    query: PreparedQuery,
    version: VersionInfo,
    options: SearchOptions,
    *,
    use_vectors: bool,
) -> Retrieved:
    """Candidates of each half the mode asks for, then the scope applied to both.

    The reader's permissions are applied inside each retriever (they bound what may be
    seen at all); a scope is one separate clause afterwards, so the two stay independent
    (see ``kb_core.search.scope``).
    """
    vector: list[Candidate] = []
    lexical: list[Candidate] = []
    if use_vectors:
        with timed_call("embedding"):
            query_vector = embedder.embed_query(query.typed)
        vector = vector_candidates(
            conn,
            query_vector,
            model_id=embedder.model_id,
            dimension=embedder.dimension,
            k=query.pool,
            version=version,
            ef_search=options.ef_search,
            reader_groups=options.reader_groups,
        )
    if options.mode in ("hybrid", "lexical"):
        lexical = bm25_candidates(
            conn,
            query.text,
            version,
            k=query.pool,
            extra_terms=query.added_terms,
            extra_weight=options.expansion_weight,
            postings_per_term=options.postings_per_term,
            reader_groups=options.reader_groups,
        )
    if _scoped(options) and options.scope is not None:
        admitted = documents_in_scope(
            conn, {c.document_id for c in (*vector, *lexical)}, options.scope
        )
        vector = [c for c in vector if c.document_id in admitted]
        lexical = [c for c in lexical if c.document_id in admitted]
    return Retrieved(vector, lexical)


def rank_documents(
    conn: psycopg.Connection[Any],
    found: Retrieved,
    text: str,
    version_id: int,
    options: SearchOptions,
) -> tuple[list[tuple[int, float]], dict[int, dict[str, float]]]:
    """The top ``k`` (document id, final score) at or above ``min_score``, and the boosts
    applied to each document.

    A single mode's score is its retriever's; hybrid fuses the two per document. Boosts
    multiply after fusion, so they reorder documents of either half alike. Ties break
    on the document id, so equal scores come out in a stable order.
    """
    if options.mode == "vector":
        scores = dict(found.vector_scores)
    elif options.mode == "lexical":
        scores = dict(found.lexical_scores)
    else:
        scores = fuse(found.vector_scores, found.lexical_scores, text, options)
    boosts = document_boosts(conn, scores, text, options.boosts, version=version_id)
    for doc, applied in boosts.items():
        scores[doc] *= math.prod(applied.values())
    ranked = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    return [(d, s) for d, s in ranked if s >= options.min_score][: options.k], boosts


def best_chunks(found: Retrieved, text: str, options: SearchOptions) -> dict[int, int]:
    """Each document's chunk to show (document id → chunk id).

    Hybrid picks by the same fusion at chunk level, so the chunk shown is the one both
    halves favour together; a single mode takes its retriever's best chunk. Ties break
    on the chunk id.
    """
    vector = {c.chunk_id: c.score for c in found.vector}
    lexical = {c.chunk_id: c.score for c in found.lexical}
    scores = (
        fuse(vector, lexical, text, options)
        if options.mode == "hybrid"
        else {c.chunk_id: c.score for c in (*found.vector, *found.lexical)}
    )
    document_of = {c.chunk_id: c.document_id for c in (*found.vector, *found.lexical)}
    best: dict[int, int] = {}
    for chunk_id, _ in sorted(scores.items(), key=lambda item: (-item[1], item[0])):
        best.setdefault(document_of[chunk_id], chunk_id)
    return best


def _scoped(options: SearchOptions) -> bool:
    return options.scope is not None and not options.scope.empty


def options_from_settings(settings: Settings, **overrides: Any) -> SearchOptions:
    """Search options as configured (KB_SEARCH_*), with per-call overrides."""
    return SearchOptions.from_settings(settings.search, settings.boosts, **overrides)
