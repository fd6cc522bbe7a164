"""Search over the knowledge base: vector, lexical (BM25) or both fused.

Hybrid takes the top candidates of each half and fuses them per document, either with
min-max normalised weights (α·vector + β·lexical, lexical weighted up for short queries,
whose few words carry exact terms: error codes, product names) or with reciprocal rank
fusion. Results are documents, each with its best chunk; every hit explains itself: its
vector and lexical scores and the fused score.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
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
from kb_core.search.lexical import POSTINGS_PER_TERM, bm25_candidates
from kb_core.search.query import SynonymDictionary
from kb_core.search.scope import SCOPE_POOL_FACTOR, SearchScope, documents_in_scope
from kb_core.search.vector import vector_candidates
from kb_core.settings import Settings

log = logging.getLogger(__name__)

Mode = Literal["hybrid", "vector", "lexical"]
Fusion = Literal["weighted", "rrf"]
MODES: tuple[Mode, ...] = ("hybrid", "vector", "lexical")

_SPACE = re.compile(r"\s+")
_HEADING_MARK = re.compile(r"(?m)^#{1,6}\s+")
_WORDS = re.compile(r"\w+")


@dataclass(frozen=True)
class SearchOptions:
    mode: Mode = "hybrid"
    k: int = 10
    fusion: Fusion = "weighted"
    # Weights chosen by measurement (README, "Retrieval"): on XQuAD-ru and the golden
    # set a broad plateau around 0.4 vector / 0.6 lexical beats either half alone.
    alpha: float = 0.4  # vector weight; lexical gets 1 - alpha
    short_query_words: int = 3
    short_query_lexical_weight: float = 0.7
    rrf_k: int = 60
    candidates: int = 50  # per half, before fusion
    min_score: float = 0.0  # relevance threshold on the final score
    ef_search: int = 100
    snippet_chars: int = 300
    namespace: str = "kb"
    version: int | None = None  # None: the namespace's active version
    postings_per_term: int = POSTINGS_PER_TERM
    boosts: Boosts = NO_BOOSTS
    synonyms_path: Path | None = None  # query expansion dictionary (None: off)
    expansion_weight: float = 0.25  # of an added synonym's BM25 contribution
    # issue 25: the reader's groups; only documents they may read are found (None: no
    # permission filter, for the pipeline and evaluation). Kept apart from any scope.
    reader_groups: frozenset[str] | None = None
    scope: SearchScope | None = None  # issue 24: sources / spaces / forms (None: all)


def make_snippet(text: str, limit: int) -> str:
    """The start of a chunk on one line (heading marks dropped), cut at a word boundary."""
    flat = _SPACE.sub(" ", _HEADING_MARK.sub("", text)).strip()
    if len(flat) <= limit:
        return flat
    cut = flat.rfind(" ", 0, limit)
    return flat[: cut if cut > limit // 2 else limit].rstrip() + "…"


def _min_max(scores: dict[int, float]) -> dict[int, float]:
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    if high - low < 1e-12:
        return dict.fromkeys(scores, 1.0)
    return {key: (value - low) / (high - low) for key, value in scores.items()}


def best_per_document(candidates: Sequence[Candidate]) -> dict[int, Candidate]:
    """Each document's best chunk (candidates come best first)."""
    best: dict[int, Candidate] = {}
    for candidate in candidates:
        best.setdefault(candidate.document_id, candidate)
    return best


def fuse(
    vector: dict[int, float], lexical: dict[int, float], query: str, options: SearchOptions
) -> dict[int, float]:
    """Fused score per key (document id), higher is better."""
    if options.fusion == "rrf":
        fused: dict[int, float] = {}
        for scores in (vector, lexical):
            ranking = sorted(scores, key=lambda key: -scores[key])
            for rank, key in enumerate(ranking, 1):
                fused[key] = fused.get(key, 0.0) + 1.0 / (options.rrf_k + rank)
        return fused
    words = len(_WORDS.findall(query))
    beta = (
        options.short_query_lexical_weight
        if words <= options.short_query_words
        else 1.0 - options.alpha
    )
    v, lx = _min_max(vector), _min_max(lexical)
    return {
        key: (1 - beta) * v.get(key, 0.0) + beta * lx.get(key, 0.0) for key in v.keys() | lx.keys()
    }


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
    """
    options = options or SearchOptions()
    if options.k <= 0:
        raise ValueError("k must be positive")
    if options.mode not in MODES:
        raise ValueError(f"unknown search mode {options.mode!r}")
    version = resolve_version(conn, options)
    expansion = (
        SynonymDictionary.load(options.synonyms_path).expand(query)
        if options.synonyms_path is not None
        else None
    )
    text = expansion.normalized if expansion is not None else query
    pool = max(options.k, options.candidates)
    scoped = options.scope is not None and not options.scope.empty
    if scoped:
        pool *= SCOPE_POOL_FACTOR
    vector: list[Candidate] = []
    lexical: list[Candidate] = []
    model_matches = version.embedding_model == embedder.model_id
    if options.mode == "vector" and not model_matches:
        raise ModelMismatch(
            f"index version {version.id} holds vectors of {version.embedding_model}, "
            f"queries are embedded with {embedder.model_id}: promote a version built "
            "with the configured model, or search in lexical mode"
        )
    if options.mode == "hybrid" and not model_matches:
        # Between a model change's promotion and the reader's restart (or the reverse),
        # hybrid degrades to its lexical half instead of failing or comparing vectors
        # of two models; every hit shows the missing vector score.
        log.warning(
            "index version %s holds vectors of %s, queries use %s: lexical results only",
            version.id,
            version.embedding_model,
            embedder.model_id,
        )
    if options.mode in ("hybrid", "vector") and model_matches:
        # The embedder gets the query as typed: normalising it was measured to cost
        # vector quality (XQuAD-ru MRR@10 0.883 → 0.877), and embedders handle synonyms.
        with timed_call("embedding"):
            query_vector = embedder.embed_query(query)
        vector = vector_candidates(
            conn,
            query_vector,
            model_id=embedder.model_id,
            dimension=embedder.dimension,
            k=pool,
            version=version,
            ef_search=options.ef_search,
            reader_groups=options.reader_groups,
        )
    if options.mode in ("hybrid", "lexical"):
        lexical = bm25_candidates(
            conn,
            text,
            version,
            k=pool,
            extra_terms=expansion.added_terms if expansion is not None else (),
            extra_weight=options.expansion_weight,
            postings_per_term=options.postings_per_term,
            reader_groups=options.reader_groups,
        )
    if scoped and options.scope is not None:
        admitted = documents_in_scope(
            conn, {c.document_id for c in (*vector, *lexical)}, options.scope
        )
        vector = [c for c in vector if c.document_id in admitted]
        lexical = [c for c in lexical if c.document_id in admitted]
    vec_docs, lex_docs = best_per_document(vector), best_per_document(lexical)
    vec_scores = {doc: c.score for doc, c in vec_docs.items()}
    lex_scores = {doc: c.score for doc, c in lex_docs.items()}
    if options.mode == "vector":
        doc_scores = dict(vec_scores)
    elif options.mode == "lexical":
        doc_scores = dict(lex_scores)
    else:
        doc_scores = fuse(vec_scores, lex_scores, text, options)
    boosts = document_boosts(conn, doc_scores, text, options.boosts, version=version.id)
    for doc, applied in boosts.items():
        doc_scores[doc] *= math.prod(applied.values())
    ranked_docs = sorted(doc_scores.items(), key=lambda item: (-item[1], item[0]))
    ranked_docs = [(d, s) for d, s in ranked_docs if s >= options.min_score][: options.k]

    # The chunk to show: the document's best chunk by the fused chunk-level score.
    chunk_scores = (
        fuse(
            {c.chunk_id: c.score for c in vector},
            {c.chunk_id: c.score for c in lexical},
            text,
            options,
        )
        if options.mode == "hybrid"
        else {c.chunk_id: c.score for c in (*vector, *lexical)}
    )
    chunk_doc = {c.chunk_id: c.document_id for c in (*vector, *lexical)}
    best_chunk: dict[int, int] = {}
    for chunk_id, _ in sorted(chunk_scores.items(), key=lambda item: (-item[1], item[0])):
        best_chunk.setdefault(chunk_doc[chunk_id], chunk_id)
    ranked = [(best_chunk[doc], doc, score) for doc, score in ranked_docs]
    hits = _load_hits(conn, ranked, vec_scores, lex_scores, options.snippet_chars)
    return [
        replace(
            hit,
            boosts=boosts.get(hit.document_id, {}),
            version_id=version.id,
            expansion=tuple(expansion.added_terms) if expansion is not None else (),
        )
        for hit in hits
    ]


class ModelMismatch(KbError, RuntimeError):
    """The index version's vectors come from another model than the query embedder."""


def _load_hits(
    conn: psycopg.Connection[Any],
    ranked: list[tuple[int, int, float]],
    vector: dict[int, float],
    lexical: dict[int, float],
    snippet_chars: int,
) -> list[SearchHit]:
    """Hits for (chunk id, document id, final score); retriever scores are per document."""
    if not ranked:
        return []
    rows = {
        row[0]: row
        for row in conn.execute(
            """
            SELECT c.id, c.title, c.text, c.heading_path, d.url, d.source, d.external_id,
                   d.source_updated_at,
                   coalesce((d.metadata ->> 'solution_confirmed')::boolean, false)
            FROM chunks c JOIN documents d ON d.id = c.document_id
            WHERE c.id = ANY(%s)
            """,
            ([chunk for chunk, _, _ in ranked],),
        )
    }
    hits = []
    for chunk_id, doc_id, score in ranked:
        _, title, text, path, url, source, external_id, updated, confirmed = rows[chunk_id]
        hits.append(
            SearchHit(
                document_id=doc_id,
                chunk_id=chunk_id,
                title=title,
                score=score,
                snippet=make_snippet(text, snippet_chars),
                heading_path=tuple(path or ()),
                url=url,
                source=source,
                external_id=external_id,
                vector_score=vector.get(doc_id),
                lexical_score=lexical.get(doc_id),
                text=text,
                updated_at=updated,
                solution_confirmed=bool(confirmed),
            )
        )
    return hits


def options_from_settings(settings: Settings, **overrides: Any) -> SearchOptions:
    """Search options as configured (KB_SEARCH_*), with per-call overrides."""
    base = SearchOptions(
        mode=settings.search_mode,
        fusion=settings.search_fusion,
        alpha=settings.search_alpha,
        short_query_lexical_weight=settings.search_short_query_lexical_weight,
        candidates=settings.search_candidates,
        min_score=settings.search_min_score,
        ef_search=settings.hnsw_ef_search,
        snippet_chars=settings.search_snippet_chars,
        postings_per_term=settings.search_postings_per_term,
        boosts=Boosts(
            title=settings.boost_title,
            recent=settings.boost_recent,
            recent_days=settings.boost_recent_days,
            confirmed_solution=settings.boost_confirmed_solution,
            correction=settings.boost_correction,
            superseded=settings.boost_superseded,
        ),
        synonyms_path=settings.synonyms_path if settings.search_expand_query else None,
        expansion_weight=settings.search_expansion_weight,
    )
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})
