"""Search hits as shown: the chosen chunk of each ranked document, read in one query.

Retrieval and ranking work on ids and scores only; the text, title, heading path and
source fields of the few chunks that made the cut are read here, once, at the end.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg

from kb_core.models import SearchHit

_SPACE = re.compile(r"\s+")
_HEADING_MARK = re.compile(r"(?m)^#{1,6}\s+")


def make_snippet(text: str, limit: int) -> str:
    """The start of a chunk on one line (heading marks dropped), cut at a word boundary."""
    flat = _SPACE.sub(" ", _HEADING_MARK.sub("", text)).strip()
    if len(flat) <= limit:
        return flat
    cut = flat.rfind(" ", 0, limit)
    return flat[: cut if cut > limit // 2 else limit].rstrip() + "…"


def load_hits(
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
