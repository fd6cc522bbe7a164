"""Run the benchmark suite: every benchmark in a fresh process, results as JSON + Markdown.

    .venv/bin/python -m bench.run                      # the full suite (make bench)
    .venv/bin/python -m bench.run --profile quick      # smaller sizes, ~10 minutes
    .venv/bin/python -m bench.run --only search,bot    # re-run some, keep the rest
    .venv/bin/python -m bench.run --publish            # also refresh docs/performance.md

Writes ``<out>/results.json`` (every figure, with the machine and commit it came from)
and ``<out>/summary.md`` (tables, targets met or not, ratios against the LangChain
baseline) and a latency chart. With ``--only``, suites not re-run keep their previous
results from ``results.json``. ``--publish`` copies the results to
``bench/results/latest.json`` and rewrites the generated block of
``docs/performance.md`` from them (a test checks the two agree).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import machine
from bench.report import PERFORMANCE, PUBLISHED, render_summary, search_chart, update_performance

ROOT = Path(__file__).resolve().parent.parent
SQUAD = ROOT / "evals" / "datasets" / "xquad-ru-dev.json"


@dataclass(frozen=True)
class Case:
    suite: str
    label: str
    module: str
    args: tuple[str, ...]


def _search(chunks: int, queries: int = 200, recall: int = 100) -> Case:
    return Case(
        "search",
        f"{chunks:,} chunks",
        "bench.search_latency",
        ("--chunks", str(chunks), "--queries", str(queries), "--recall-queries", str(recall)),
    )


def _ingest(pages: int) -> Case:
    return Case("ingest", f"{pages:,} pages", "bench.ingest_pipeline", ("--pages", str(pages)))


def _baseline(squad: bool, rounds: int = 3) -> Case:
    args: tuple[str, ...] = ("--squad", str(SQUAD)) if squad and SQUAD.is_file() else ()
    return Case(
        "baseline",
        "golden + XQuAD-ru" if args else "golden",
        "bench.langchain_baseline",
        (*args, "--rounds", str(rounds)),
    )


def _bot(senders: str, webhooks: int, sequential: int) -> Case:
    return Case(
        "bot",
        f"senders {senders}",
        "bench.webhook_load",
        ("--senders", senders, "--webhooks", str(webhooks), "--sequential", str(sequential)),
    )


PROFILES: dict[str, list[Case]] = {
    "full": [
        _search(10_000),
        _search(100_000),
        _search(1_000_000, recall=50),
        _baseline(squad=True),
        _bot("20,100", 400, 20),
        _ingest(1_000),
        _ingest(10_000),
    ],
    "quick": [
        _search(10_000),
        _search(100_000),
        _baseline(squad=True),
        _bot("20,100", 400, 20),
        _ingest(1_000),
    ],
    # Seconds, not minutes: proves every benchmark still runs (the tests use it).
    "smoke": [
        _search(2_000, queries=20, recall=10),
        _baseline(squad=False, rounds=1),
        _bot("4,8", 24, 3),
        _ingest(20),
    ],
}
SUITES = ("search", "baseline", "bot", "ingest")


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def run_case(case: Case, log: Path) -> dict[str, Any]:
    """One benchmark in its own process; its last stdout line is the result."""
    with log.open("w") as err:
        proc = subprocess.run(
            [sys.executable, "-m", case.module, *case.args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"{case.module} {' '.join(case.args)} failed (exit {proc.returncode}); see {log}"
        )
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def _render(out: Path, results: dict[str, Any], publish: bool) -> int:
    """summary.md and the chart beside results.json; with ``publish`` also bench/results
    and the generated block of docs/performance.md."""
    chart = search_chart(results, out / "search_latency.png")
    (out / "summary.md").write_text(render_summary(results, chart.name if chart else None), "utf-8")
    print(f"results: {out / 'results.json'}\nsummary: {out / 'summary.md'}", file=sys.stderr)
    if publish:
        PUBLISHED.parent.mkdir(parents=True, exist_ok=True)
        if (out / "results.json").resolve() != PUBLISHED.resolve():
            shutil.copyfile(out / "results.json", PUBLISHED)
        if chart is not None:
            shutil.copyfile(chart, PUBLISHED.parent / chart.name)
        update_performance(PERFORMANCE, results)
        print(f"published: {PUBLISHED} and {PERFORMANCE}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full")
    parser.add_argument("--only", help=f"comma-separated suites of {', '.join(SUITES)}")
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "bench")
    parser.add_argument(
        "--publish",
        action="store_true",
        help="copy to bench/results and update docs/performance.md",
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="run nothing: render the summary (and with --publish docs/performance.md) "
        "from results.json",
    )
    args = parser.parse_args(argv)
    if args.render_only:
        return _render(
            args.out, json.loads((args.out / "results.json").read_text("utf-8")), args.publish
        )

    only = set(args.only.split(",")) if args.only else set(SUITES)
    unknown = only - set(SUITES)
    if unknown:
        parser.error(f"unknown suites: {', '.join(sorted(unknown))}")
    cases = [c for c in PROFILES[args.profile] if c.suite in only]
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "results.json"
    previous = json.loads(results_path.read_text("utf-8")) if results_path.is_file() else {}
    suites: dict[str, Any] = {
        name: value
        for name, value in previous.get("suites", {}).items()
        if name not in only and name in SUITES
    }

    began = time.perf_counter()
    fresh: dict[str, list[dict[str, Any]]] = {}
    failed: list[str] = []
    for number, case in enumerate(cases, 1):
        print(
            f"[{number}/{len(cases)}] {case.suite}: {case.label} ...", file=sys.stderr, flush=True
        )
        started = time.perf_counter()
        log = args.out / f"{case.suite}-{number}.log"
        try:
            result = run_case(case, log)
        except RuntimeError as exc:
            # One broken benchmark must not cost the hour the others took: report it,
            # keep going, and fail the run at the end.
            print(f"    FAILED: {exc}", file=sys.stderr, flush=True)
            failed.append(f"{case.suite}: {case.label}")
            continue
        result["wall_s"] = round(time.perf_counter() - started, 1)
        result["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        fresh.setdefault(case.suite, []).append(result)
        print(f"    done in {result['wall_s']} s", file=sys.stderr, flush=True)
    commit = _git_commit()
    for suite, values in fresh.items():
        # Per suite: with --only, suites in one file may come from different commits.
        suites[suite] = {"profile": args.profile, "commit": commit, "runs": values}

    results = {
        "machine": machine(),
        "commit": commit,
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "last_run_s": round(time.perf_counter() - began, 1),
        "suites": suites,
    }
    results_path.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", "utf-8")
    _render(args.out, results, args.publish and not failed)
    if failed:
        print(f"failed: {'; '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
