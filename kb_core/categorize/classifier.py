"""A ticket's category without an LLM: its nearest resolved, labelled tickets vote.

Resolved tickets are already in the knowledge base (their chunks are embedded and carry
the category the agent chose in ``documents.metadata``), so the classifier needs no
model and no training step of its own: the tickets closest to the new one by embedding
vote with their similarity, one vote per ticket. Keyword rules from the taxonomy break a
near-tie (the two best categories within ``TIE_MARGIN`` of the vote) and decide alone
while there are no labelled tickets yet. The confidence is the winner's share of the vote
(of the keyword hits when keywords decided, halved: they are the weaker signal).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg import sql

from kb_core.categorize.taxonomy import Taxonomy
from kb_core.index.vector_index import model_predicate, vector_expression
from kb_core.index.versions import VersionInfo, visible
from kb_core.sources.pyrus_tasks import TICKETS_SOURCE
from kb_core.text.lemmas import lemmas

TIE_MARGIN = 0.2  # of the vote share (measured: evals.categorization)
KEYWORD_CONFIDENCE_FACTOR = 0.5


@dataclass(frozen=True)
class Neighbour:
    external_id: str
    category: str
    similarity: float


@dataclass(frozen=True)
class Prediction:
    category: str
    confidence: float
    method: str  # knn | knn+keywords | keywords | fallback | llm
    votes: dict[str, float] = field(default_factory=dict)


def ticket_neighbours(
    conn: psycopg.Connection[Any],
    query_vector: npt.NDArray[np.float32],
    *,
    model_id: str,
    dimension: int,
    version: VersionInfo,
    k: int,
    exclude: Collection[str] = (),
) -> list[Neighbour]:
    """The ``k`` labelled resolved tickets of ``version`` closest to the query (a ticket's
    similarity is that of its best chunk). ``exclude``: ticket ids left out (the ticket
    itself, or a held-out fold in an evaluation)."""
    distance = sql.SQL("{expr} <=> {param}::vector({dim})").format(
        expr=vector_expression(dimension), param=sql.Placeholder("q"), dim=sql.Literal(dimension)
    )
    statement = sql.SQL(
        """
        SELECT d.external_id, d.metadata ->> 'category', max(1 - ({distance})) AS similarity
        FROM chunks c JOIN documents d ON d.id = c.document_id
        WHERE {model} AND c.namespace = {namespace} AND {visible}
          AND d.source = {source} AND coalesce(d.metadata ->> 'category', '') <> ''
          AND NOT (d.external_id = ANY({exclude}))
        GROUP BY d.external_id, d.metadata ->> 'category'
        ORDER BY similarity DESC
        LIMIT {limit}
        """
    ).format(
        distance=distance,
        model=model_predicate(model_id),
        namespace=sql.Literal(version.namespace),
        visible=visible("c", version.id),
        source=sql.Literal(TICKETS_SOURCE),
        exclude=sql.Placeholder("exclude"),
        limit=sql.Literal(k),
    )
    rows = conn.execute(statement, {"q": query_vector, "exclude": list(exclude)}).fetchall()
    return [Neighbour(str(e), str(c), float(s)) for e, c, s in rows]


def keyword_hits(text: str, taxonomy: Taxonomy) -> Counter[str]:
    """How many of each category's keywords (lemma phrases) occur in ``text``."""
    found = set(lemmas(text))
    hits: Counter[str] = Counter()
    for category in taxonomy.categories:
        for phrase in category.keyword_lemmas:
            if all(term in found for term in phrase):
                hits[category.name] += 1
    return hits


def classify(
    neighbours: Sequence[Neighbour], keywords: Counter[str], taxonomy: Taxonomy
) -> Prediction:
    votes: dict[str, float] = {}
    for neighbour in neighbours:
        name = taxonomy.canonical(neighbour.category)
        if name is not None:
            votes[name] = votes.get(name, 0.0) + max(neighbour.similarity, 0.0)
    total = sum(votes.values())
    if total > 0:
        ranked = sorted(votes, key=lambda n: (-votes[n], taxonomy.names.index(n)))
        best_share = votes[ranked[0]] / total
        tied = [n for n in ranked if best_share - votes[n] / total < TIE_MARGIN]
        method = "knn"
        winner = ranked[0]
        if len(tied) > 1 and any(keywords[n] for n in tied):
            winner = max(tied, key=lambda n: (keywords[n], votes[n]))
            method = "knn+keywords"
        rounded = {n: round(v / total, 4) for n, v in votes.items()}
        return Prediction(winner, round(votes[winner] / total, 4), method, rounded)
    if keywords:
        hits = sum(keywords.values())
        winner = max(keywords, key=lambda n: (keywords[n], -taxonomy.names.index(n)))
        share = keywords[winner] / hits
        return Prediction(
            winner,
            round(share * KEYWORD_CONFIDENCE_FACTOR, 4),
            "keywords",
            {n: round(v / hits, 4) for n, v in keywords.items()},
        )
    return Prediction(taxonomy.fallback, 0.0, "fallback")


@dataclass
class TicketClassifier:
    """Classifies ticket text against one index version (the active one, for the bot)."""

    taxonomy: Taxonomy
    k: int = 7
    learn_from_agents: bool = True  # issue 22: agents' categories vote too

    def predict(
        self,
        conn: psycopg.Connection[Any],
        text: str,
        query_vector: npt.NDArray[np.float32] | None,
        *,
        model_id: str,
        dimension: int,
        version: VersionInfo | None,
        exclude: Collection[str] = (),
    ) -> Prediction:
        """``version`` None (nothing promoted yet) or ``query_vector`` None (the version
        holds another model's vectors): keywords decide."""
        neighbours: list[Neighbour] = []
        usable = version is not None and version.embedding_model in (None, model_id)
        if query_vector is not None and version is not None and usable:
            neighbours = ticket_neighbours(
                conn,
                query_vector,
                model_id=model_id,
                dimension=dimension,
                version=version,
                k=self.k,
                exclude=exclude,
            )
        if query_vector is not None and self.learn_from_agents:
            # issue 22: categories agents set, stored as examples (kb_core.categorize.examples)
            from kb_core.categorize.examples import example_neighbours, merge

            examples = example_neighbours(
                conn, query_vector, model_id=model_id, k=self.k, exclude=exclude
            )
            neighbours = merge(neighbours, examples, self.k)
        return classify(neighbours, keyword_hits(text, self.taxonomy), self.taxonomy)
