"""The per-case table of a stored evaluation run (`kb eval cases`), on the real database."""

from __future__ import annotations

import pytest

from evals.cases import CaseThresholds, case_table
from evals.harness import store_run
from kb_core.db import Database
from kb_core.index.versions import open_candidate


def test_case_table_reads_the_stored_run_in_the_seeds_columns(database: Database) -> None:
    with database.connection() as conn:
        with pytest.raises(LookupError, match="kb eval golden"):
            case_table(conn, CaseThresholds())
        version = open_candidate(conn)
        rows = [
            {
                "case_id": "gc-001",
                "mode": "default",
                "metrics": {"similarity": 0.8, "precision@5": 0.4, "chrf": 0.3},
                "retrieved": [],
                "duration_s": 0.5,
            },
            {
                "case_id": "gc-001",
                "mode": "hybrid",
                "metrics": {"precision@5": 0.0},
                "retrieved": [],
                "duration_s": 0.1,
            },
            {
                "case_id": "gc-002",
                "mode": "default",
                "metrics": {"similarity": 0.3, "precision@5": 0.2},
                "retrieved": [],
                "duration_s": 0.25,
            },
        ]
        run = store_run(conn, version, "kb", "g", {}, rows, {"failures": []}, 1.0)
        found, table = case_table(conn, CaseThresholds(max_distance=0.5, min_precision5=0.2))
        assert found == run
        assert [(r["test_id"], r["mode"]) for r in table] == [
            ("gc-001", "default"),
            ("gc-002", "default"),
            ("gc-001", "hybrid"),
        ]
        assert set(table[0]) == {
            "test_id",
            "mode",
            "distance",
            "similarity",
            "duration_s",
            "precision@5",
            "pass",
        }
        assert table[0]["distance"] == 0.2 and table[0]["pass"]
        assert table[1]["distance"] == 0.7 and not table[1]["pass"]  # too far from the reference
        assert table[2]["distance"] is None and not table[2]["pass"]  # precision@5 too low
        _, only = case_table(conn, CaseThresholds(), run_id=run, mode="hybrid")
        assert [r["mode"] for r in only] == ["hybrid"]
