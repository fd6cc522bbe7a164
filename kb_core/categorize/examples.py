"""Categories set by agents, kept as labelled examples for the classifier.

The nearest-neighbour classifier votes with resolved tickets of the active index, which
carry the category the ticket had when it was indexed: days after an agent chose it, and
possibly the bot's own guess left in place. Here every ticket whose category an *agent*
set (``category_source = 'agent'`` when the day's tickets are collected) is stored at
once as (vector of its scrubbed question, category); the classifier adds the closest of
them to its neighbours, so an agent's correction teaches it from the next day on.

Vectors are compared in numpy over the newest ``MAX_EXAMPLES`` of the query's model:
a few thousand rows, no index needed. Only vectors and category names are stored.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg

from kb_core.categorize.classifier import Neighbour

MAX_EXAMPLES = 5000


def remember(
    conn: psycopg.Connection[Any],
    task_id: int,
    category: str,
    vector: npt.NDArray[np.float32],
    model_id: str,
) -> None:
    """Store (or replace) the agent's category of one ticket."""
    conn.execute(
        """
        INSERT INTO category_examples (task_id, category, model_id, embedding)
        VALUES (%s, %s, %s, %s)
        ON CONFLICT (task_id) DO UPDATE SET category = EXCLUDED.category,
            model_id = EXCLUDED.model_id, embedding = EXCLUDED.embedding, created_at = now()
        """,
        (task_id, category, model_id, [float(x) for x in vector]),
    )


def example_neighbours(
    conn: psycopg.Connection[Any],
    query_vector: npt.NDArray[np.float32],
    *,
    model_id: str,
    k: int,
    exclude: Collection[str] = (),
) -> list[Neighbour]:
    """The ``k`` stored examples closest to the query (cosine similarity)."""
    rows = conn.execute(
        """
        SELECT task_id, category, embedding FROM category_examples
        WHERE model_id = %s AND NOT (task_id::text = ANY(%s))
        ORDER BY created_at DESC LIMIT %s
        """,
        (model_id, list(exclude), MAX_EXAMPLES),
    ).fetchall()
    rows = [r for r in rows if len(r[2]) == len(query_vector)]
    if not rows:
        return []
    matrix = np.asarray([r[2] for r in rows], dtype=np.float32)
    query = np.asarray(query_vector, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1) * max(float(np.linalg.norm(query)), 1e-12)
    similarity = (matrix @ query) / np.maximum(norms, 1e-12)
    best = np.argsort(-similarity)[:k]
    return [Neighbour(str(rows[i][0]), str(rows[i][1]), float(similarity[i])) for i in best]


def merge(indexed: Sequence[Neighbour], examples: Sequence[Neighbour], k: int) -> list[Neighbour]:
    """The ``k`` closest of both; a ticket in both votes once, with the agent's example
    (its category is the newer decision)."""
    by_ticket = {n.external_id: n for n in indexed}
    by_ticket.update({n.external_id: n for n in examples})
    return sorted(by_ticket.values(), key=lambda n: -n.similarity)[:k]
