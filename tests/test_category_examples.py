"""Categories set by agents as labelled examples: stored at collection, voting at once."""

from __future__ import annotations

import numpy as np

from kb_core.categorize.classifier import Neighbour, TicketClassifier
from kb_core.categorize.examples import example_neighbours, merge, remember
from kb_core.categorize.taxonomy import Category, Taxonomy
from kb_core.db import Database

TAXONOMY = Taxonomy((Category("Уведомления"), Category("Доступ и права")))


def _unit(*values: float) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def test_agents_categories_vote_for_the_next_ticket(database: Database):
    classifier = TicketClassifier(TAXONOMY, k=3)
    query = _unit(1.0, 0.1, 0.0)
    with database.connection() as conn:
        before = classifier.predict(
            conn, "текст без ключевых слов", query, model_id="m", dimension=3, version=None
        )
        assert before.method == "fallback"  # nothing labelled yet, no keywords
        remember(conn, 11, "Уведомления", _unit(1.0, 0.0, 0.0), "m")
        remember(conn, 12, "Уведомления", _unit(0.9, 0.2, 0.0), "m")
        remember(conn, 13, "Доступ и права", _unit(0.0, 0.0, 1.0), "m")
        remember(conn, 14, "Доступ и права", _unit(1.0, 0.1, 0.0), "other-model")
        after = classifier.predict(
            conn, "текст без ключевых слов", query, model_id="m", dimension=3, version=None
        )
        assert (after.category, after.method) == ("Уведомления", "knn")
        # An agent changing a ticket's category replaces its example.
        remember(conn, 11, "Доступ и права", _unit(1.0, 0.0, 0.0), "m")
        found = example_neighbours(conn, query, model_id="m", k=5, exclude=["12"])
        assert [(n.external_id, n.category) for n in found] == [
            ("11", "Доступ и права"),
            ("13", "Доступ и права"),
        ]
        assert example_neighbours(conn, _unit(1.0, 0.0), model_id="m", k=5) == []  # other size


def test_a_ticket_in_the_index_and_in_the_examples_votes_once_with_the_agents_category():
    indexed = [Neighbour("1", "Уведомления", 0.9), Neighbour("2", "Уведомления", 0.5)]
    examples = [Neighbour("1", "Доступ и права", 0.9), Neighbour("3", "Доступ и права", 0.7)]
    merged = merge(indexed, examples, 2)
    assert [(n.external_id, n.category) for n in merged] == [
        ("1", "Доступ и права"),
        ("3", "Доступ и права"),
    ]


def test_time_split_trains_on_older_tickets_and_tests_on_newer():
    from evals.categorization import confusion, time_split

    tickets = [
        ("2026-05-03", "3", "Уведомления", "c"),
        ("2026-05-01", "1", "Уведомления", "a"),
        ("2026-05-04", "4", "Доступ и права", "d"),
        ("2026-05-02", "2", "Доступ и права", "b"),
        ("2026-05-05", "5", "Уведомления", "e"),
    ]
    older, newer = time_split(tickets, 0.6)
    assert [t[1] for t in older] == ["1", "2", "3"]
    assert [t[1] for t in newer] == ["4", "5"]
    table = confusion(["A", "A", "B"], ["A", "B", "B"])
    assert table == {"A": {"A": 1, "B": 1}, "B": {"B": 1}}
