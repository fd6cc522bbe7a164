"""Benchmark: search latency at scale (synthetic chunks), database part and query embedding.

Fills a fresh embedded database with N synthetic chunks of one active index version:
text drawn from the sample knowledge base's vocabulary with a Zipf-like word
distribution (so common words are common), and unit vectors clustered around random
centres. Builds the indexes and the version's BM25 statistics, then times the database
part of `search()` in each mode over Q queries (the query vector is precomputed, so
candidates, fusion, boosts and the hit rows are timed, the embedding is not), and
separately the embedding of a query with the packaged model. Also reports HNSW
recall@10 against exact search at the configured ``ef_search`` and across a sweep of
``ef_search`` values (with the vector query's own latency), and how much of BM25's
top 10 early termination keeps compared with reading every posting. With
``--restricted-share`` (default 0.1) each mode is also timed for a reader whose groups
exclude that share of the documents (``*_reader_ms``: the permission clause of issue 25).

Loading is built for a million chunks: vectors are generated in NumPy batches and sent
with binary COPY, and the postings are computed inside PostgreSQL from the chunk text
(the synthetic text is already lemmas) with the posting indexes built afterwards.

    .venv/bin/python -m bench.search_latency --chunks 100000 --queries 200
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import emit, latency_summary, machine

DIM = 512
MODEL = "usem3-multilingual-v3"
BATCH = 10_000


class Precomputed:
    """An embedder that returns a precomputed query vector: times the database part."""

    model_id = MODEL
    dimension = DIM

    def __init__(self, vector: np.ndarray) -> None:
        self.vector = vector

    def embed_query(self, text: str) -> np.ndarray:
        return self.vector

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError


def vocabulary() -> list[str]:
    from kb_core.text.lemmas import lemmas
    from kb_fakes.confluence import ConfluenceStore

    counts: dict[str, int] = {}
    for page in ConfluenceStore.from_samples().pages.values():
        for word in lemmas(page.body):
            if word.isalpha():
                counts[word] = counts.get(word, 0) + 1
    return sorted(counts, key=lambda w: -counts[w])


def _load(conn: Any, chunks: int, words: int, rng: random.Random, nprng: Any) -> tuple[int, Any]:
    """Documents, chunks and postings of one version; returns (version id, centres)."""
    from kb_core.index.postings import K1, REFERENCE_LENGTH, B

    vocab = vocabulary()
    weights = [1 / (rank + 1) for rank in range(len(vocab))]
    cumulative = np.cumsum(weights)
    centres = nprng.standard_normal((500, DIM)).astype(np.float32)
    with conn.transaction():
        version = conn.execute(
            "INSERT INTO index_versions (namespace, status, embedding_model, dimension) "
            "VALUES ('kb', 'active', %s, %s) RETURNING id",
            (MODEL, DIM),
        ).fetchone()[0]
        first_doc = conn.execute(
            """
            INSERT INTO documents (source, external_id, title, raw_format,
                                   content_hash, safe_title)
            SELECT 'bench', g::text, 'Документ ' || g, 'markdown', g::text,
                   'Документ ' || g
            FROM generate_series(1, %s) g RETURNING id
            """,
            ((chunks + 1) // 2,),
        ).fetchall()[0][0]
        # Throw-away database: the unused full-text column gets a default so the
        # binary COPY (fast for vectors) need not produce tsvectors.
        conn.execute("ALTER TABLE chunks ALTER COLUMN tsv SET DEFAULT ''::tsvector")
        with conn.cursor().copy(
            "COPY chunks (id, document_id, ordinal, text, content_hash, embedding, "
            "embedding_model, lexical_length, namespace, title, valid_from) "
            "FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(
                [
                    *("int8", "int8", "int4", "text", "text", "vector", "text"),
                    *("int4", "text", "text", "int8"),
                ]
            )
            vocab_array = np.array(vocab, dtype=object)
            for begin in range(0, chunks, BATCH):
                size = min(BATCH, chunks - begin)
                picks = np.searchsorted(cumulative, nprng.random((size, words)) * cumulative[-1])
                vectors = centres[np.arange(begin, begin + size) % len(centres)]
                vectors = vectors + 0.8 * nprng.standard_normal((size, DIM)).astype(np.float32)
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                for row in range(size):
                    i = begin + row
                    text = " ".join(vocab_array[picks[row]])
                    copy.write_row(
                        [
                            *(i + 1, first_doc + i // 2, i % 2, text, str(i), vectors[row]),
                            *(MODEL, words, "kb", f"Документ {i // 2 + 1}", version),
                        ]
                    )
        # Postings computed in the server from the stored text, with the posting indexes
        # built once afterwards instead of maintained row by row.
        indexes = [
            r[0]
            for r in conn.execute(
                "SELECT indexdef FROM pg_indexes WHERE tablename = 'chunk_terms' "
                "AND indexname <> 'chunk_terms_pkey'"
            ).fetchall()
        ]
        for (name,) in conn.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'chunk_terms'::regclass "
            "AND contype IN ('p', 'f', 'u')"
        ).fetchall():
            conn.execute(f'ALTER TABLE chunk_terms DROP CONSTRAINT "{name}"')
        for (name,) in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'chunk_terms'"
        ).fetchall():
            conn.execute(f'DROP INDEX "{name}"')
        conn.execute(
            """
            INSERT INTO chunk_terms (chunk_id, term, namespace, document_id, tf, length,
                                     impact, valid_from)
            SELECT c.id, t.term, 'kb', c.document_id, t.tf, c.lexical_length,
                   t.tf / (t.tf + %s * (1 - %s + %s * c.lexical_length / %s)), %s
            FROM chunks c,
                 LATERAL (SELECT w AS term, count(*)::int AS tf
                          FROM unnest(string_to_array(c.text, ' ')) w GROUP BY w) t
            """,
            (K1, B, B, REFERENCE_LENGTH, version),
        )
        conn.execute("ALTER TABLE chunk_terms ADD PRIMARY KEY (chunk_id, term)")
        for definition in indexes:
            conn.execute(definition)
    return version, centres


def run(
    chunks: int,
    queries: int = 200,
    words: int = 80,
    recall_queries: int = 100,
    ef_sweep: tuple[int, ...] = (40, 100, 200, 400),
    seed: int = 11,
    restricted_share: float = 0.1,
) -> dict[str, Any]:
    from pgvector.psycopg import register_vector
    from psycopg.conninfo import make_conninfo

    from kb_core.db import apply_migrations, connect, embedded
    from kb_core.db.connection import ensure_database
    from kb_core.embeddings import make_embedder
    from kb_core.index.vector_index import ensure_vector_index
    from kb_core.index.versions import get_version, write_term_stats
    from kb_core.search import options_from_settings, search
    from kb_core.search.lexical import bm25_candidates
    from kb_core.search.vector import vector_candidates
    from kb_core.settings import PROJECT_ROOT, get_settings

    rng = random.Random(seed)
    nprng = np.random.default_rng(seed)
    # The options production uses (boosts included), so the figure is the bot's.
    settings = get_settings()
    ef_search = settings.search.ef_search
    report: dict[str, Any] = {
        "machine": machine(),
        "chunks": chunks,
        "queries": queries,
        "words_per_chunk": words,
        "dimension": DIM,
        "ef_search": ef_search,
    }
    with tempfile.TemporaryDirectory(prefix="kb-bench-") as tmp:
        server = embedded.start(Path(tmp))
        ensure_database(server.uri, "bench")
        url = make_conninfo(server.uri, dbname="bench")
        apply_migrations(url, PROJECT_ROOT / "sql")
        with connect(url) as conn:
            register_vector(conn)
            started = time.perf_counter()
            version, centres = _load(conn, chunks, words, rng, nprng)
            report["load_s"] = round(time.perf_counter() - started, 1)
            started = time.perf_counter()
            # The graph of a million 512-d vectors needs ~3 GB to build in memory.
            conn.execute("SET maintenance_work_mem = '4GB'")
            conn.execute("SET max_parallel_maintenance_workers = 1")
            ensure_vector_index(conn, MODEL, DIM)
            conn.execute("VACUUM ANALYZE")
            report["index_build_s"] = round(time.perf_counter() - started, 1)
            # What promotion computes for a version: document frequencies, size, length.
            started = time.perf_counter()
            with conn.transaction():
                conn.execute(
                    "UPDATE index_versions SET status = 'candidate' WHERE id = %s", (version,)
                )
                write_term_stats(conn, get_version(conn, version))
                conn.execute(
                    "UPDATE index_versions SET status = 'active', chunks = %s, documents = %s, "
                    "avg_length = %s WHERE id = %s",
                    (chunks, (chunks + 1) // 2, float(words), version),
                )
            report["version_stats_s"] = round(time.perf_counter() - started, 1)
            report["database_mib"] = round(
                conn.execute("SELECT pg_database_size(current_database())").fetchone()[0] / 1024**2
            )
            active = get_version(conn, version)
            # Source permissions (issue 25): a share of the documents restricted to a
            # group the searching reader is not in, so the permission clause both runs
            # and removes candidates; timed against the same queries without it.
            restricted = 0
            if restricted_share > 0:
                step = max(1, round(1 / restricted_share))
                # Recorded as Confluence restrictions: the origin is constrained to the
                # sources that sync access (migration 0016).
                restricted = conn.execute(
                    "INSERT INTO document_access (document_id, groups, origin) "
                    "SELECT id, ARRAY['restricted-group'], 'confluence' FROM documents "
                    "WHERE id %% %s = 0",
                    (step,),
                ).rowcount
                conn.execute("ANALYZE document_access")
            report["restricted_documents"] = restricted
            reader = frozenset({"kb-agents", "support"})

            sample_ids = [rng.randrange(1, chunks + 1) for _ in range(queries)]
            texts = dict(
                conn.execute(
                    "SELECT id, text FROM chunks WHERE id = ANY(%s)", (sample_ids,)
                ).fetchall()
            )
            query_set = []
            for chunk_id in sample_ids:
                source = texts[chunk_id].split()
                start = rng.randrange(max(1, len(source) - 6))
                query_text = " ".join(source[start : start + rng.randint(2, 6)])
                centre = centres[rng.randrange(len(centres))]
                qv = centre + 0.8 * nprng.standard_normal(DIM).astype(np.float32)
                query_set.append((query_text, (qv / np.linalg.norm(qv)).astype(np.float32)))

            modes = ("vector", "lexical", "hybrid")
            runs = [(mode, None) for mode in modes]
            if restricted:
                runs += [(mode, reader) for mode in modes]
            timings: dict[str, list[float]] = {
                f"{mode}{'_reader' if groups is not None else ''}": [] for mode, groups in runs
            }
            for number, (query_text, qv) in enumerate(query_set):
                embedder = Precomputed(qv)
                # Rotate the order, so no mode always finds the query's pages cached.
                for mode, groups in runs[number % len(runs) :] + runs[: number % len(runs)]:
                    options = options_from_settings(settings, mode=mode, k=10, reader_groups=groups)
                    t0 = time.perf_counter()
                    search(conn, embedder, query_text, options)
                    key = f"{mode}{'_reader' if groups is not None else ''}"
                    timings[key].append((time.perf_counter() - t0) * 1000)
            for mode, values in timings.items():
                report[f"{mode}_ms"] = latency_summary(values)

            # Recall against exact search (a sequential scan, no index), at the configured
            # ef_search and at each value of the sweep, so the trade-off can be chosen.
            # The index queries are timed first: an exact scan of a large table evicts
            # the index from the cache, and the figure must be the warm one search sees.
            checked = query_set[:recall_queries]
            sweep = sorted({ef_search, *ef_sweep})
            found: dict[int, list[set[int]]] = {ef: [] for ef in sweep}
            sweep_ms: dict[int, list[float]] = {ef: [] for ef in sweep}
            for ef in sweep:
                for _, qv in checked:
                    t0 = time.perf_counter()
                    vec = vector_candidates(
                        conn,
                        qv,
                        model_id=MODEL,
                        dimension=DIM,
                        k=10,
                        version=active,
                        ef_search=ef,
                    )
                    sweep_ms[ef].append((time.perf_counter() - t0) * 1000)
                    found[ef].append({c.chunk_id for c in vec})
            recall_hits = dict.fromkeys(sweep, 0)
            exact_overlap = 0
            for number, (query_text, qv) in enumerate(checked):
                exact = {
                    r[0]
                    for r in conn.execute(
                        f"SELECT id FROM chunks ORDER BY (embedding::vector({DIM})) "
                        f"<=> %s::vector({DIM}) LIMIT 10",
                        (qv,),
                    ).fetchall()
                }
                for ef in sweep:
                    recall_hits[ef] += len(exact & found[ef][number])
                # Early termination against reading every posting: top-10 overlap.
                cut = bm25_candidates(conn, query_text, active, k=10)
                full = bm25_candidates(conn, query_text, active, k=10, postings_per_term=10**9)
                exact_overlap += len({c.chunk_id for c in cut} & {c.chunk_id for c in full})
            report["hnsw_recall@10"] = round(recall_hits[ef_search] / (10 * len(checked)), 4)
            report["hnsw_sweep"] = [
                {
                    "ef_search": ef,
                    "recall@10": round(recall_hits[ef] / (10 * len(checked)), 4),
                    "top10_ms": latency_summary(sweep_ms[ef]),
                }
                for ef in sweep
            ]
            report["bm25_top10_overlap_with_exhaustive"] = round(
                exact_overlap / (10 * len(checked)), 4
            )
        embedded.stop(Path(tmp))

    embedder = make_embedder("usem3", threads=1)
    embedder.embed_query("прогрев")
    samples = []
    for query_text, _ in query_set[:100]:
        t0 = time.perf_counter()
        embedder.embed_query(query_text)
        samples.append((time.perf_counter() - t0) * 1000)
    report["query_embedding_ms"] = latency_summary(samples)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--words", type=int, default=80, help="words per synthetic chunk")
    parser.add_argument(
        "--recall-queries", type=int, default=100, help="queries checked against exact search"
    )
    parser.add_argument(
        "--ef-sweep", default="40,100,200,400", help="ef_search values to measure recall at"
    )
    parser.add_argument(
        "--restricted-share",
        type=float,
        default=0.1,
        help="share of documents restricted to a group the reader lacks; the *_reader "
        "timings search with the reader's groups (0: no permission timings)",
    )
    args = parser.parse_args()
    sweep = tuple(int(v) for v in args.ef_sweep.split(",") if v.strip())
    emit(
        run(
            args.chunks,
            args.queries,
            args.words,
            args.recall_queries,
            sweep,
            restricted_share=args.restricted_share,
        )
    )


if __name__ == "__main__":
    main()
