"""The lexical rankers the product could use, compared on the same chunks.

- ``russian ts_rank``: PostgreSQL's snowball ``russian`` configuration on the chunks'
  full-text column (title and headings weighted A, body B), OR-query;
- ``simple ts_rank over lemmas``: pymorphy3 lemmas in a ``simple`` tsvector, OR-query;
- ``bm25 over lemmas``: what search uses (kb_core.search.lexical).

Used by evals.search_ablation; the result is in docs/retrieval.md.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from psycopg import sql

from kb_core.index.versions import VersionInfo, visible
from kb_core.search.lexical import bm25_candidates
from kb_core.text.lemmas import lemmas

Ranker = Callable[[str], list[int]]  # question → document ids, best first


def _simple_table(conn: Any, version: VersionInfo) -> None:
    rows = conn.execute(
        sql.SQL(
            "SELECT c.id, c.document_id, c.title, c.text FROM chunks c "
            "WHERE c.namespace = {ns} AND {visible}"
        ).format(ns=sql.Literal(version.namespace), visible=visible("c", version.id))
    ).fetchall()
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS lemma_tsv "
        "(chunk_id bigint PRIMARY KEY, document_id bigint, tsv tsvector)"
    )
    conn.execute("TRUNCATE lemma_tsv")
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO lemma_tsv VALUES (%s, %s, to_tsvector('simple', %s))",
            [(cid, did, " ".join(lemmas(f"{title}\n{text}"))) for cid, did, title, text in rows],
        )


def rankers(conn: Any, version: VersionInfo, k: int = 10) -> dict[str, Ranker]:
    _simple_table(conn, version)
    live = sql.SQL("c.namespace = {ns} AND {visible}").format(
        ns=sql.Literal(version.namespace), visible=visible("c", version.id)
    )
    russian = sql.SQL(
        """
        SELECT c.document_id, max(ts_rank(c.tsv, x.q)) AS r
        FROM chunks c,
             (SELECT replace(plainto_tsquery('russian', %(q)s)::text, '&', '|')::tsquery AS q) x
        WHERE {live} AND c.tsv @@ x.q
        GROUP BY c.document_id ORDER BY r DESC LIMIT %(k)s
        """
    ).format(live=live)
    simple = """
        SELECT t.document_id, max(ts_rank(t.tsv, to_tsquery('simple', %(q)s))) AS r
        FROM lemma_tsv t WHERE t.tsv @@ to_tsquery('simple', %(q)s)
        GROUP BY t.document_id ORDER BY r DESC LIMIT %(k)s
    """

    def rank_russian(question: str) -> list[int]:
        return [r[0] for r in conn.execute(russian, {"q": question, "k": k})]

    def rank_simple(question: str) -> list[int]:
        terms = sorted({t.replace("'", "") for t in lemmas(question)} - {""})
        if not terms:
            return []
        query = " | ".join(f"'{t}'" for t in terms)
        return [r[0] for r in conn.execute(simple, {"q": query, "k": k})]

    def rank_bm25(question: str) -> list[int]:
        seen: dict[int, None] = {}
        for candidate in bm25_candidates(conn, question, version, k=5 * k):
            seen.setdefault(candidate.document_id)
        return list(seen)[:k]

    return {
        "russian ts_rank": rank_russian,
        "simple ts_rank over lemmas": rank_simple,
        "bm25 over lemmas": rank_bm25,
    }


def compare(
    conn: Any,
    version: VersionInfo,
    cases: Sequence[Any],
    doc_key: Callable[[int], str],
    k: int = 10,
) -> dict[str, Any]:
    from evals.retrieval import evaluate

    return {
        name: evaluate(cases, lambda q, rank=rank: [doc_key(d) for d in rank(q)])
        for name, rank in rankers(conn, version, k).items()
    }
