"""The benchmark suite: every benchmark runs end to end (smoke sizes) and measures real
work, the summary says which targets are met, and docs/performance.md shows the published results.

Timings are never asserted here (they belong to the benchmarks); what is asserted is what
the figures must mean: an unchanged refresh embeds nothing, an edit re-embeds only its own
chunks, the LangChain baseline is a working retriever, the bot answered every webhook.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench.report import PERFORMANCE, PUBLISHED, performance_block, render_summary, targets
from bench.run import SUITES

pytestmark = pytest.mark.slow  # the benchmark smoke run: every benchmark end to end

ROOT = Path(__file__).resolve().parent.parent


def _bench(out: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench.run", "--profile", "smoke", "--out", str(out), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )


def _rerun(smoke_out: Path, out: Path, *args: str) -> None:
    """``bench.run`` on a copy of the smoke results (the fixture's stay as they were)."""
    shutil.copyfile(smoke_out / "results.json", out / "results.json")
    proc = _bench(out, *args)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("bench")
    proc = _bench(out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, json.loads((out / "results.json").read_text("utf-8"))


def _only(results: dict[str, Any], suite: str) -> dict[str, Any]:
    runs: list[dict[str, Any]] = results["suites"][suite]["runs"]
    assert len(runs) == 1
    return runs[0]


@pytest.mark.timeout(1500)
def test_smoke_profile_runs_every_benchmark_and_summarises(
    smoke: tuple[Path, dict[str, Any]],
) -> None:
    out, results = smoke
    assert set(results["suites"]) == set(SUITES)
    assert results["machine"]["cores"] >= 1 and results["machine"]["cpu"]
    summary = (out / "summary.md").read_text("utf-8")
    for heading in ("**Search**", "**Ingestion**", "**Against a LangChain", "**Bot**"):
        assert heading in summary
    # Every figure is rendered from the results, none typed in.
    assert f"{_only(results, 'search')['hybrid_ms']['p95']:g}" in summary


@pytest.mark.timeout(1500)
def test_refresh_cost_follows_the_change_not_the_corpus(
    smoke: tuple[Path, dict[str, Any]],
) -> None:
    run = _only(smoke[1], "ingest")
    full, same, some = run["full"], run["no_change"], run["one_percent_changed"]
    assert full["sync_mode"] == "full" and full["fetched"] == run["pages"]
    assert full["embedded"] == full["chunks_written"] == run["chunks_in_index"] > run["pages"]
    assert full["candidate_evaluated"]
    assert same["sync_mode"] == "incremental"
    assert same["fetched"] < run["pages"]  # only the overlap window is re-read
    assert same["chunks_written"] == same["embedded"] == 0
    assert not same["candidate_evaluated"]  # no candidate: nothing to evaluate or promote
    assert some["fetched"] < run["pages"]
    assert 1 <= some["embedded"] <= 3 * run["changed_pages"]
    assert some["candidate_evaluated"]
    stages = full["stages_s"]
    assert set(stages) >= {"fetch", "markdown", "scrub + chunk", "PII re-scan", "embed"}
    assert all(seconds > 0 for name, seconds in stages.items() if name != "eval gate")
    assert full["peak_rss_mib"] > 0 and run["peak_rss_of_run_mib"]["largest_child"] > 0


@pytest.mark.timeout(1500)
def test_search_benchmark_checks_hnsw_against_exact_search(
    smoke: tuple[Path, dict[str, Any]],
) -> None:
    run = _only(smoke[1], "search")
    assert run["hnsw_recall@10"] >= 0.9
    assert 0 < run["bm25_top10_overlap_with_exhaustive"] <= 1
    for mode in ("vector", "lexical", "hybrid", "query_embedding"):
        summary = run[f"{mode}_ms"]
        assert 0 < summary["p50"] <= summary["p95"] <= summary["p99"]


@pytest.mark.timeout(1500)
def test_langchain_baseline_is_a_working_retriever_and_we_beat_it_on_quality(
    smoke: tuple[Path, dict[str, Any]],
) -> None:
    golden = _only(smoke[1], "baseline")["golden"]
    ours = golden["kb hybrid"]
    for system in (
        "LangChain ensemble (BM25 str.split)",
        "LangChain ensemble (BM25 lower-cased words)",
    ):
        # Not a strawman: the ensemble finds most answers on its own.
        assert golden[system]["hit@5"] >= 0.8
        # Deterministic (same vectors, same questions): quality is a fact, not a timing.
        assert ours["hit@5"] >= golden[system]["hit@5"]
        assert ours["mrr@10"] > golden[system]["mrr@10"]
    assert golden["ours_vs_best_langchain"]["mrr@10_delta"] > 0


@pytest.mark.timeout(1500)
def test_bot_benchmark_answered_every_webhook(smoke: tuple[Path, dict[str, Any]]) -> None:
    run = _only(smoke[1], "bot")
    bursts = run["bursts_by_senders"]
    assert set(bursts) == {"4", "8"}
    # The warm-up webhook, both bursts, all answered before the sequential part.
    assert run["jobs_done"] == 1 + run["webhooks_per_burst"] * len(bursts)
    assert run["sequential_tickets"] == 3 and run["mode"] == ["extractive"]
    for process in ("api", "worker"):
        memory = run["memory_mib"][process]
        assert 0 < memory["rss"] <= memory["peak"]


@pytest.mark.timeout(1500)
def test_only_reruns_the_named_suites_and_keeps_the_rest(
    smoke: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    before = smoke[1]
    _rerun(smoke[0], tmp_path, "--only", "search")
    after = json.loads((tmp_path / "results.json").read_text("utf-8"))
    assert set(after["suites"]) == set(SUITES)
    assert after["suites"]["bot"] == before["suites"]["bot"]
    assert _only(after, "search")["finished"] >= _only(before, "search")["finished"]


def test_unknown_suite_is_refused(tmp_path: Path) -> None:
    proc = _bench(tmp_path, "--only", "search,speed")
    assert proc.returncode == 2
    assert "unknown suites: speed" in proc.stderr


def _results(**suites: Any) -> dict[str, Any]:
    machine = {"cpu": "CPU", "arch": "x86_64", "cores": 2, "memory_gib": 8, "python": "3.11"}
    return {
        "machine": {**machine, "os": "Linux"},
        "commit": "abc",
        "finished": "2026-11-21T00:00:00+00:00",
        "suites": {name: {"runs": runs} for name, runs in suites.items()},
    }


def test_targets_are_judged_from_the_figures() -> None:
    def search(chunks: int, p95: float) -> dict[str, Any]:
        latency = {"p50": 1, "p95": p95, "p99": p95}
        return {
            "chunks": chunks,
            "queries": 10,
            "words_per_chunk": 80,
            "dimension": 512,
            "ef_search": 100,
            "load_s": 1,
            "index_build_s": 1,
            "database_mib": 10,
            "hnsw_recall@10": 1.0,
            **{f"{mode}_ms": latency for mode in ("hybrid", "vector", "lexical")},
            "query_embedding_ms": latency,
        }

    verdicts = {
        t: met
        for t, _, met in targets(_results(search=[search(100_000, 31), search(1_000_000, 99)]))
    }
    assert verdicts["hybrid search p95 ≤ 30 ms at 100,000 chunks (database part)"] is False
    assert verdicts["hybrid search p95 ≤ 100 ms at 1,000,000 chunks (database part)"] is True
    assert verdicts["refresh with nothing changed at 10,000 pages < 60 s"] is None
    summary = render_summary(_results(search=[search(100_000, 31)]))
    assert (
        "| hybrid search p95 ≤ 30 ms at 100,000 chunks (database part) | 31 ms | **no** |"
        in summary
    )


def test_performance_page_shows_the_published_results() -> None:
    published = json.loads(PUBLISHED.read_text("utf-8"))
    assert performance_block(published) in PERFORMANCE.read_text("utf-8")
    # The published run is a full one: every target measured.
    assert all(met is not None for _, _, met in targets(published))


@pytest.mark.timeout(1500)
def test_render_only_rewrites_the_summary_from_the_results(
    smoke: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    _rerun(smoke[0], tmp_path, "--render-only")
    assert (tmp_path / "summary.md").read_text("utf-8") == render_summary(smoke[1])
