"""Benchmark: our hybrid search against a LangChain ensemble on the same corpus and questions.

The baseline is what a Python developer would otherwise assemble: LangChain's
``EnsembleRetriever`` (reciprocal rank fusion, equal weights) over ``PGVector`` (in the
same PostgreSQL server, its own database) and ``BM25Retriever`` (rank_bm25 in memory).
langchain-postgres, the newer home of PGVector, cannot be installed here: its releases
require pgvector-python < 0.4, the dependency set pins 0.5.1; langchain-community's
``PGVector`` is the same design (SQLAlchemy, a collection table, exact cosine ORDER BY).

Both sides get identical inputs: the chunks of our active index version (the PII-free
text with its title and headings, exactly what our embedder embedded), their stored
vectors, and the same packaged embedder for every query. BM25 runs twice: with
LangChain's default tokenizer (``str.split``) and with a fair one (lower-cased words), so
the comparison is not won on a tokenizer nobody would keep.

Sets: the sample golden set on the sample knowledge base, and XQuAD-ru dev (each
paragraph a document, its own namespace). Per question the systems run one after the
other in rotating order; quality is document-level hit@5 and MRR@10 (first relevant
document), latency is the whole retrieval call including the query embedding, over
``--rounds`` passes.

    .venv/bin/python -m bench.langchain_baseline --squad evals/datasets/xquad-ru-dev.json
"""

from __future__ import annotations

import argparse
import re
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.common import emit, latency_summary, machine

OURS = "kb hybrid"
LC_DEFAULT = "LangChain ensemble (BM25 str.split)"
LC_WORDS = "LangChain ensemble (BM25 lower-cased words)"
SYSTEMS = (OURS, LC_DEFAULT, LC_WORDS)
_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _embeddings(embedder: Any) -> Any:
    from langchain_core.embeddings import Embeddings

    class KbEmbeddings(Embeddings):
        """Our packaged embedder behind LangChain's interface: same vectors both sides."""

        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [list(map(float, v)) for v in embedder.embed_documents(texts)]

        def embed_query(self, text: str) -> list[float]:
            return list(map(float, embedder.embed_query(text)))

    return KbEmbeddings()


def corpus(conn: Any, namespace: str, doc_key: Callable[[str, str], str]) -> list[dict[str, Any]]:
    """The active version's chunks as the baseline indexes them: embedded text, stored
    vector and the document key the golden cases name."""
    from psycopg import sql

    from kb_core.index.stages import embedding_input
    from kb_core.index.versions import active_version, visible

    version = active_version(conn, namespace)
    rows = conn.execute(
        sql.SQL(
            "SELECT c.title, c.heading_path, c.text, c.embedding, d.source, "
            "d.external_id FROM chunks c JOIN documents d ON d.id = c.document_id "
            "WHERE c.namespace = %s AND {vis} ORDER BY c.id"
        ).format(vis=visible("c", version.id)),
        (namespace,),
    ).fetchall()
    return [
        {
            "text": embedding_input(title, path, text),
            "vector": vector.to_list(),
            "doc": doc_key(source, external_id),
        }
        for title, path, text, vector, source, external_id in rows
    ]


def _ensembles(chunks: list[dict[str, Any]], url: str, name: str, embeddings: Any) -> dict:
    from langchain_classic.retrievers import EnsembleRetriever
    from langchain_community.retrievers import BM25Retriever
    from langchain_community.vectorstores.pgvector import PGVector

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PGVector's deprecation notice
        store = PGVector(
            connection_string=url,
            embedding_function=embeddings,
            collection_name=name,
            pre_delete_collection=True,
            use_jsonb=True,
        )
    store.add_embeddings(
        [c["text"] for c in chunks],
        [c["vector"] for c in chunks],
        metadatas=[{"doc": c["doc"]} for c in chunks],
    )
    vector = store.as_retriever(search_kwargs={"k": 10})
    out = {}
    for system, tokenizer in ((LC_DEFAULT, str.split), (LC_WORDS, words)):
        bm25 = BM25Retriever.from_texts(
            [c["text"] for c in chunks],
            metadatas=[{"doc": c["doc"]} for c in chunks],
            preprocess_func=tokenizer,
            k=10,
        )
        out[system] = EnsembleRetriever(retrievers=[bm25, vector], weights=[0.5, 0.5])
    return out


def compare(
    cases: Sequence[Any],
    systems: dict[str, Callable[[str], list[str]]],
    rounds: int = 3,
    warmup: int = 5,
) -> dict[str, Any]:
    """Quality and latency of each system (question → ranked document keys) on ``cases``.

    Quality from the first round (rankings are deterministic); latency from every round,
    so a p95 of a hundred-question set rests on more than its five slowest questions.
    """
    from evals.retrieval import case_metrics, dedupe

    names = list(systems)
    for case in cases[:warmup]:
        for name in names:
            systems[name](case.question)
    metrics: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    latency: dict[str, list[float]] = {n: [] for n in names}
    for round_number in range(rounds):
        for number, case in enumerate(cases):
            shift = (number + round_number) % len(names)
            for name in names[shift:] + names[:shift]:
                started = time.perf_counter()
                ranking = systems[name](case.question)
                latency[name].append((time.perf_counter() - started) * 1000)
                if round_number == 0:
                    metrics[name].append(case_metrics(dedupe(ranking), case.relevant))
    out: dict[str, Any] = {"questions": len(cases), "latency_rounds": rounds}
    for name in names:
        rows = metrics[name]
        out[name] = {
            "hit@5": round(sum(r["hit@5"] for r in rows) / len(rows), 4),
            "mrr@10": round(sum(r["mrr@10"] for r in rows) / len(rows), 4),
            "latency_ms": latency_summary(latency[name]),
        }
    return out


def _ratios(result: dict[str, Any]) -> dict[str, Any]:
    """Ours against the stronger LangChain variant (higher MRR@10)."""
    ours = result[OURS]
    best = max((LC_DEFAULT, LC_WORDS), key=lambda s: result[s]["mrr@10"])
    theirs = result[best]
    return {
        "baseline": best,
        "hit@5_delta": round(ours["hit@5"] - theirs["hit@5"], 4),
        "mrr@10_delta": round(ours["mrr@10"] - theirs["mrr@10"], 4),
        "p50_speedup": round(theirs["latency_ms"]["p50"] / ours["latency_ms"]["p50"], 2),
        "p95_speedup": round(theirs["latency_ms"]["p95"] / ours["latency_ms"]["p95"], 2),
    }


def run(
    squad_path: Path | None = None, squad_limit: int | None = None, rounds: int = 3
) -> dict[str, Any]:
    from psycopg.conninfo import conninfo_to_dict

    from evals.retrieval import load_golden
    from evals.sample_kb import sample_index
    from evals.squad import SOURCE as SQUAD_SOURCE
    from evals.squad import index_squad, load_squad
    from kb_core.db.connection import ensure_database
    from kb_core.search import options_from_settings, search
    from kb_core.settings import get_settings

    settings = get_settings()
    report: dict[str, Any] = {"machine": machine(), "systems": list(SYSTEMS)}
    with sample_index(settings=settings) as (conn, embedder):
        params = conninfo_to_dict(conn.info.dsn)
        ensure_database(conn.info.dsn, "langchain")
        url = (
            f"postgresql+psycopg://{params.get('user', 'postgres')}@/langchain"
            f"?host={params['host']}&port={params.get('port', 5432)}"
        )
        embeddings = _embeddings(embedder)
        sets: list[tuple[str, str, Sequence[Any], Callable[[Any], str], Callable]] = [
            (
                "golden",
                "kb",
                load_golden(),
                lambda hit: f"{hit.source}:{hit.external_id}",
                lambda source, external_id: f"{source}:{external_id}",
            )
        ]
        if squad_path is not None:
            squad = load_squad(squad_path)
            index_squad(conn, squad, embedder, "bench")
            cases = squad.cases[:squad_limit] if squad_limit else squad.cases
            sets.append(
                (
                    "xquad-ru-dev",
                    "bench",
                    cases,
                    lambda hit: f"{SQUAD_SOURCE}:{hit.external_id}",
                    lambda source, external_id: f"{SQUAD_SOURCE}:{external_id}",
                )
            )
        for name, namespace, cases, hit_key, row_key in sets:
            chunks = corpus(conn, namespace, row_key)
            ensembles = _ensembles(chunks, url, f"bench_{namespace}", embeddings)
            options = options_from_settings(settings, mode="hybrid", k=10, namespace=namespace)

            def ours(question: str, options: Any = options, hit_key: Any = hit_key) -> list[str]:
                return [hit_key(h) for h in search(conn, embedder, question, options)]

            def theirs(retriever: Any) -> Callable[[str], list[str]]:
                return lambda question: [d.metadata["doc"] for d in retriever.invoke(question)]

            systems = {OURS: ours, **{n: theirs(r) for n, r in ensembles.items()}}
            result = compare(cases, systems, rounds)
            result["chunks"] = len(chunks)
            result["ours_vs_best_langchain"] = _ratios(result)
            report[name] = result
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad", type=Path, help="also compare on this SQuAD-format file")
    parser.add_argument("--squad-limit", type=int, help="only the first N questions")
    parser.add_argument("--rounds", type=int, default=3, help="timed passes over the questions")
    args = parser.parse_args()
    emit(run(args.squad, args.squad_limit, args.rounds))


if __name__ == "__main__":
    main()
