"""Retrieval metrics (evals.retrieval): per-case figures by hand, their means checked
against ranx, and the golden-set format (origin, several files, unique ids)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals.retrieval import (
    METRIC_KEYS,
    ORIGINS,
    GoldenCase,
    GoldenSetError,
    case_metrics,
    dedupe,
    evaluate,
    evaluate_cases,
    evaluate_ranx,
    load_golden,
    load_golden_sets,
    mean_case_metrics,
)


def case(case_id: str, *relevant: str, origin: str = "curated") -> GoldenCase:
    return GoldenCase(case_id, f"вопрос {case_id}", frozenset(relevant), "ответ", (), origin)


def test_case_metrics_by_hand() -> None:
    ranking = ["x", "a", "y", "z", "w", "b", "v"]
    row = case_metrics(ranking, frozenset({"a", "b", "c"}))
    assert row["hit@1"] == 0.0 and row["hit@5"] == 1.0
    assert row["precision@5"] == pytest.approx(1 / 5)
    assert row["recall@5"] == pytest.approx(1 / 3)
    assert row["recall@10"] == pytest.approx(2 / 3)
    assert row["mrr@10"] == 0.5
    assert set(row) == set(METRIC_KEYS)
    perfect = case_metrics(["a", "b"], frozenset({"a", "b"}))
    assert perfect == {
        "hit@1": 1.0,
        "hit@5": 1.0,
        "precision@5": 0.4,
        "recall@5": 1.0,
        "recall@10": 1.0,
        "mrr@10": 1.0,
        "ndcg@10": 1.0,
    }
    nothing = case_metrics([], frozenset({"a"}))
    assert all(value == 0.0 for value in nothing.values())
    # Only the first 10 count.
    late = case_metrics([f"n{i}" for i in range(10)] + ["a"], frozenset({"a"}))
    assert late["recall@10"] == 0.0 and late["mrr@10"] == 0.0


def test_means_equal_ranx() -> None:
    cases = [
        case("q1", "a", "b"),
        case("q2", "c"),
        case("q3", "d", "e", "f"),
        case("q4", "g"),
        case("q5", "h", "i"),
    ]
    rankings = [
        ["a", "x", "b"],
        ["x", "y", "z", "w", "v", "c"],  # found at 6: recall@10 only
        ["f", "x", "f", "d", "y", "z", "e"],  # a chunk ranking: deduplicated
        [],  # nothing retrieved
        ["x", "i"],
    ]
    rows = [case_metrics(dedupe(r), c.relevant) for c, r in zip(cases, rankings, strict=True)]
    ours = mean_case_metrics(rows)
    theirs = evaluate_ranx(cases, rankings)
    assert theirs["queries"] == 5
    for key in METRIC_KEYS:
        assert ours[key] == pytest.approx(theirs[key], abs=1e-4), key
    by_question = dict(zip([c.question for c in cases], rankings, strict=True))
    assert evaluate(cases, lambda q: by_question[q]) == {"queries": 5, **ours}


def test_evaluate_cases_keeps_per_case_figures() -> None:
    cases = [case("q1", "a"), case("q2", "b", origin="correction")]
    rows = evaluate_cases(cases, lambda q: ["a", "a", "b"])
    assert [r["id"] for r in rows] == ["q1", "q2"]
    assert [r["origin"] for r in rows] == ["curated", "correction"]
    assert rows[0]["ranking"] == ["a", "b"]
    assert rows[0]["metrics"]["hit@1"] == 1.0 and rows[1]["metrics"]["mrr@10"] == 0.5


def write(path: Path, *rows: dict) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def row(case_id: str, **extra: object) -> dict:
    return {
        "id": case_id,
        "question": "не приходят письма",
        "relevant_doc_ids": ["confluence:1001002"],
        "reference_answer": "Проверьте настройки.",
        "tags": ["email"],
        **extra,
    }


def test_sample_set_loads_with_origins() -> None:
    cases = load_golden()
    assert len(cases) >= 100 and len({c.id for c in cases}) == len(cases)
    assert {c.origin for c in cases} <= set(ORIGINS)
    assert load_golden_sets([Path(__file__).parents[1] / "evals/golden/sample.jsonl"]) == cases
    assert load_golden_sets()[: len(cases)] == cases


def test_golden_sets_merge_and_ids_must_be_unique(tmp_path: Path) -> None:
    sample = write(tmp_path / "sample.jsonl", row("gc-1"), row("gc-2", origin="synthetic"))
    regressions = write(tmp_path / "regressions.jsonl", row("rg-1", origin="correction"))
    cases = load_golden_sets([sample, regressions])
    assert [(c.id, c.origin) for c in cases] == [
        ("gc-1", "curated"),  # the default origin
        ("gc-2", "synthetic"),
        ("rg-1", "correction"),
    ]
    clash = write(tmp_path / "clash.jsonl", row("gc-2", origin="correction"))
    with pytest.raises(GoldenSetError, match=r"'gc-2' is in both .*sample.jsonl and .*clash"):
        load_golden_sets([sample, clash])
    twice = write(tmp_path / "twice.jsonl", row("a"), row("a"))
    with pytest.raises(GoldenSetError, match=r"twice.jsonl:2: duplicate case id 'a'"):
        load_golden(twice)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (row("x", origin="imported"), "origin 'imported' is not one of"),
        ({"id": "x", "question": "q"}, "missing relevant_doc_ids"),
        (row("x", relevant_doc_ids="confluence:1"), "must be a list of strings"),
        (row(""), "'id' must be a non-empty string"),
    ],
)
def test_malformed_cases_name_their_line(tmp_path: Path, bad: dict, message: str) -> None:
    path = write(tmp_path / "bad.jsonl", row("ok"), bad)
    with pytest.raises(GoldenSetError, match=rf"bad.jsonl:2: .*{message}"):
        load_golden(path)
