"""Lexical candidates: Okapi BM25 over pymorphy3 lemmas, computed in PostgreSQL.

Term frequencies live in ``chunk_terms`` (written with the chunks); document frequencies,
the collection size and the average length are computed per query over the live chunks
of one namespace, so the statistics are always those of what is searchable.
"""

from __future__ import annotations

from typing import Any

import psycopg

from kb_core.search.candidates import Candidate
from kb_core.text.lemmas import lemmas

K1 = 1.2
B = 0.75


def bm25_candidates(
    conn: psycopg.Connection[Any], query: str, *, k: int, namespace: str = "kb"
) -> list[Candidate]:
    """Chunks by BM25 score, best first."""
    terms = sorted(set(lemmas(query)))
    if not terms:
        return []
    rows = conn.execute(
        """
        WITH live AS (
            SELECT c.id, c.document_id, c.lexical_length FROM chunks c
            JOIN documents d ON d.id = c.document_id
            WHERE d.namespace = %(ns)s AND d.deleted_at IS NULL
        ),
        stats AS (
            SELECT count(*)::float AS n, greatest(avg(lexical_length), 1)::float AS avgdl
            FROM live
        ),
        postings AS (
            SELECT t.term, t.chunk_id, live.document_id, t.tf, live.lexical_length
            FROM chunk_terms t JOIN live ON live.id = t.chunk_id
            WHERE t.term = ANY(%(terms)s)
        ),
        df AS (SELECT term, count(*)::float AS df FROM postings GROUP BY term)
        SELECT p.chunk_id, p.document_id,
               sum(ln(1 + (s.n - df.df + 0.5) / (df.df + 0.5))
                   * p.tf * (%(k1)s + 1)
                   / (p.tf + %(k1)s * (1 - %(b)s + %(b)s * p.lexical_length / s.avgdl)))
                   AS score
        FROM postings p JOIN df USING (term) CROSS JOIN stats s
        GROUP BY p.chunk_id, p.document_id
        ORDER BY score DESC, p.chunk_id
        LIMIT %(k)s
        """,
        {"ns": namespace, "terms": terms, "k1": K1, "b": B, "k": k},
    ).fetchall()
    return [Candidate(int(chunk), int(doc), float(score)) for chunk, doc, score in rows]
