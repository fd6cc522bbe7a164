"""Pictures and tables of the evaluation history: PNG charts and a static HTML report.

Read from ``eval_runs`` / ``eval_cases``; used by the ``rag_eval`` asset (a chart in its
metadata) and by ``kb eval report`` (one self-contained HTML file: charts inlined, no
scripts, opens anywhere).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from kb_core.charts import figure_png, png_data_uri

HISTORY_METRICS = ("hit@1", "hit@5", "mrr@10", "ndcg@10")
MODES = ("hybrid", "vector", "lexical")


@dataclass(frozen=True)
class RunRow:
    id: int
    version: int
    started_at: datetime
    metrics: dict[str, dict[str, float]]
    passed: bool | None
    failures: list[str]


def history(conn: Any, namespace: str = "kb", limit: int = 90) -> list[RunRow]:
    rows = conn.execute(
        """
        SELECT id, index_version, started_at, metrics, passed, gate
        FROM eval_runs WHERE namespace = %s ORDER BY id DESC LIMIT %s
        """,
        (namespace, limit),
    ).fetchall()
    return [
        RunRow(r[0], r[1], r[2], dict(r[3]), r[4], list((r[5] or {}).get("failures", [])))
        for r in reversed(rows)
    ]


def history_chart(runs: list[RunRow]) -> bytes:
    """Hybrid retrieval metrics per evaluation run; failed runs marked red."""
    figure, axis = plt.subplots(figsize=(8, 3.6))
    xs = list(range(1, len(runs) + 1))
    for key in HISTORY_METRICS:
        ys = [run.metrics.get("hybrid", {}).get(key) for run in runs]
        axis.plot(xs, [y if y is not None else float("nan") for y in ys], marker="o", label=key)
    failed = [x for x, run in zip(xs, runs, strict=True) if run.passed is False]
    for x in failed:
        axis.axvline(x, color="tab:red", alpha=0.25, linewidth=6)
    axis.set_ylim(0, 1.02)
    axis.set_xticks(xs)
    axis.set_xticklabels([f"v{run.version}" for run in runs], rotation=45, fontsize=8)
    axis.set_ylabel("гибридный поиск, эталонный набор")
    axis.set_title("Качество поиска по оценкам (красным — отклонённый кандидат)")
    axis.grid(alpha=0.3)
    axis.legend(loc="lower left", fontsize=8, ncol=4)
    return figure_png(figure)


def modes_chart(run: RunRow) -> bytes:
    """The latest run: each metric per search mode, side by side."""
    figure, axis = plt.subplots(figsize=(8, 3.6))
    width = 0.26
    for offset, mode in enumerate(MODES):
        values = [run.metrics.get(mode, {}).get(key, 0.0) for key in HISTORY_METRICS]
        positions = [i + (offset - 1) * width for i in range(len(HISTORY_METRICS))]
        bars = axis.bar(positions, values, width, label=mode)
        axis.bar_label(bars, fmt="%.2f", fontsize=7)
    axis.set_xticks(range(len(HISTORY_METRICS)))
    axis.set_xticklabels(HISTORY_METRICS)
    axis.set_ylim(0, 1.1)
    axis.set_title(f"Версия индекса {run.version}: качество по режимам поиска")
    axis.legend(fontsize=8)
    axis.grid(axis="y", alpha=0.3)
    return figure_png(figure)


def worst_cases(conn: Any, run_id: int, n: int = 15) -> list[dict[str, Any]]:
    rows = conn.execute(
        """
        SELECT case_id, metrics, retrieved, duration_s FROM eval_cases
        WHERE run_id = %s AND mode = 'hybrid'
        ORDER BY (metrics->>'mrr@10')::float, duration_s DESC LIMIT %s
        """,
        (run_id, n),
    ).fetchall()
    return [
        {"case_id": r[0], "metrics": dict(r[1]), "retrieved": list(r[2]), "duration_s": r[3]}
        for r in rows
    ]


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="{png_data_uri(png)}">'


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def render_html(conn: Any, namespace: str = "kb") -> str:
    runs = history(conn, namespace)
    parts = [
        "<!doctype html><html lang='ru'><head><meta charset='utf-8'>",
        "<title>Качество базы знаний</title><style>",
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}",
        "table{border-collapse:collapse;margin:1em 0;font-size:14px}",
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}",
        "th{background:#f3f3f3} .bad{color:#b00} img{max-width:100%}",
        "</style></head><body>",
        "<h1>Качество базы знаний: оценка версий индекса</h1>",
    ]
    if not runs:
        parts.append(
            "<p>Оценок ещё нет: запустите обновление базы или <code>kb eval golden</code>.</p>"
        )
        parts.append("</body></html>")
        return "".join(parts)
    latest = runs[-1]
    status = "пройдена" if latest.passed else "не пройдена"
    parts.append(
        f"<p>Последняя оценка: версия {latest.version}, "
        f"{latest.started_at:%Y-%m-%d %H:%M}, проверка {status}.</p>"
    )
    if latest.failures:
        parts.append(
            "<ul class='bad'>"
            + "".join(f"<li>{html.escape(f)}</li>" for f in latest.failures)
            + "</ul>"
        )
    parts.append("<h2>История</h2>" + _img(history_chart(runs), "history"))
    parts.append("<h2>Режимы поиска</h2>" + _img(modes_chart(latest), "modes"))
    keys = sorted({k for mode in latest.metrics.values() for k in mode})
    modes = list(latest.metrics)
    parts.append(
        _table(
            ["метрика", *modes],
            [[key, *(_fmt(latest.metrics[mode].get(key, "")) for mode in modes)] for key in keys],
        )
    )
    worst = worst_cases(conn, latest.id)
    parts.append("<h2>Худшие вопросы (гибридный поиск)</h2>")
    parts.append(
        _table(
            ["вопрос", "MRR@10", "hit@5", "найдено первым", "время, с"],
            [
                [
                    w["case_id"],
                    _fmt(float(w["metrics"].get("mrr@10", 0.0))),
                    _fmt(float(w["metrics"].get("hit@5", 0.0))),
                    ", ".join(w["retrieved"][:3]),
                    _fmt(float(w["duration_s"])),
                ]
                for w in worst
            ],
        )
    )
    parts.append("<h2>Все оценки</h2>")
    parts.append(
        _table(
            ["оценка", "версия", "время", "hit@5", "MRR@10", "результат"],
            [
                [
                    run.id,
                    run.version,
                    f"{run.started_at:%Y-%m-%d %H:%M}",
                    _fmt(run.metrics.get("hybrid", {}).get("hit@5", "")),
                    _fmt(run.metrics.get("hybrid", {}).get("mrr@10", "")),
                    "пройдена" if run.passed else "не пройдена",
                ]
                for run in reversed(runs)
            ],
        )
    )
    parts.append("</body></html>")
    return "".join(parts)


def write_report(conn: Any, path: Path, namespace: str = "kb") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(conn, namespace), "utf-8")
    return path
