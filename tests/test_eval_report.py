"""The evaluation report: charts and tables from stored runs, one self-contained page."""

import json

from evals.report import history, history_chart, render_html, write_report
from kb_core.db import Database


def _store_runs(conn) -> None:
    for hit5, passed in [(0.95, True), (0.5, False), (0.97, True)]:
        version = conn.execute(
            "INSERT INTO index_versions (namespace, status) VALUES ('kb', 'retired') RETURNING id"
        ).fetchone()[0]
        metrics = {
            mode: {
                "queries": 8.0,
                "hit@1": hit5 - 0.2,
                "hit@5": hit5,
                "mrr@10": hit5 - 0.1,
                "ndcg@10": hit5 - 0.05,
            }
            for mode in ("hybrid", "vector", "lexical")
        }
        gate = {"failures": [] if passed else ["hit@5 0.5 below the threshold 0.8"]}
        run = conn.execute(
            "INSERT INTO eval_runs (index_version, golden_set, metrics, gate, passed) "
            "VALUES (%s, 'g', %s, %s, %s) RETURNING id",
            (version, json.dumps(metrics), json.dumps(gate), passed),
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO eval_cases (run_id, case_id, mode, metrics, retrieved, duration_s) "
            "VALUES (%s, 'g<script>', 'hybrid', %s, %s, 0.01)",
            (run, json.dumps({"mrr@10": 0.0, "hit@5": 0.0}), json.dumps(["files:a.md"])),
        )


def test_report_shows_history_modes_and_worst_cases(database: Database, tmp_path):
    with database.connection() as conn:
        _store_runs(conn)
        runs = history(conn)
        assert [r.passed for r in runs] == [True, False, True]
        assert history_chart(runs).startswith(b"\x89PNG")
        page = render_html(conn)
        path = write_report(conn, tmp_path / "out" / "report.html")
    assert page.count("data:image/png;base64,") == 2
    assert "Худшие вопросы" in page and "g&lt;script&gt;" in page and "<script>" not in page
    assert "hit@5 0.5 below the threshold 0.8" not in page  # the latest run passed
    assert path.read_text("utf-8") == page


def test_report_without_runs_says_so(database: Database):
    with database.connection() as conn:
        assert "Оценок ещё нет" in render_html(conn)
