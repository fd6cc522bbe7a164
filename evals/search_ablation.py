"""What each retrieval feature is worth: boosts, query expansion, fusion, postings cut-off.

    .venv/bin/python -m evals.search_ablation [--squad evals/datasets/xquad-ru-dev.json]

Indexes the sample knowledge base once (and XQuAD-ru when given), then evaluates the
golden set (and XQuAD) with the configured search options and with one feature changed
at a time, and compares the lexical rankers (evals.lexical_variants). Defaults in
kb_core.settings were chosen from these figures (docs/retrieval.md). Prints one JSON
line per variant and set as it is measured: {"variant", "set", "results": mode → metrics}.
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def variants(base: Any, synonyms_path: Any) -> dict[str, Any]:
    from kb_core.search.boosts import NO_BOOSTS

    boosts = base.boosts
    return {
        "configured": base,
        "with query expansion": replace(base, synonyms_path=synonyms_path),
        "no boosts": replace(base, boosts=NO_BOOSTS, synonyms_path=None),
        "title boost only": replace(
            base,
            boosts=replace(NO_BOOSTS, title=boosts.title, title_min_share=boosts.title_min_share),
        ),
        "source boosts only": replace(
            base,
            boosts=replace(
                NO_BOOSTS,
                confirmed_solution=boosts.confirmed_solution,
                correction=boosts.correction,
            ),
        ),
        "rrf fusion": replace(base, fusion="rrf"),
        "200 postings per term": replace(base, postings_per_term=200),
        "all postings": replace(base, postings_per_term=10**9),
    }


def grid(base: Any, synonyms_path: Any) -> dict[str, Any]:
    """One factor at a time, from a plain hybrid search (no boosts, no expansion)."""
    from kb_core.search.boosts import NO_BOOSTS

    plain = replace(base, boosts=NO_BOOSTS, synonyms_path=None)
    out: dict[str, Any] = {"plain": plain}
    for weight in (0.25, 0.5, 1.0):
        out[f"expansion weight {weight}"] = replace(
            plain, synonyms_path=synonyms_path, expansion_weight=weight
        )
    for name, factors in {
        "title": (1.05, 1.1, 1.2),
        "recent": (1.1,),
        "confirmed_solution": (1.05, 1.1, 1.2, 1.5),
        "correction": (1.1, 1.3, 2.0),
    }.items():
        for factor in factors:
            out[f"{name} x{factor}"] = replace(plain, boosts=replace(NO_BOOSTS, **{name: factor}))
    return out


def run(
    cases: Any,
    conn: Any,
    embedder: Any,
    options: Any,
    doc_key: Any,
    modes: tuple[str, ...] = ("hybrid", "vector", "lexical"),
) -> dict[str, Any]:
    from evals.retrieval import evaluate
    from kb_core.search import search

    results = {}
    for mode in modes:
        mode_options = replace(options, mode=mode)
        results[mode] = evaluate(
            cases,
            lambda q, o=mode_options: [doc_key(h) for h in search(conn, embedder, q, o)],
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--squad", type=Path, help="also measure on this SQuAD-format file")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument(
        "--grid", action="store_true", help="hybrid only, one boost or expansion weight at a time"
    )
    args = parser.parse_args()

    from tqdm import tqdm

    from evals.retrieval import load_golden
    from evals.sample_kb import sample_index
    from evals.squad import SOURCE as SQUAD_SOURCE
    from evals.squad import index_squad, load_squad
    from kb_core.search import options_from_settings
    from kb_core.settings import get_settings

    settings = get_settings()
    golden = load_golden()

    def emit(variant: str, name: str, results: dict[str, Any]) -> None:
        line = {"variant": variant, "set": name, "results": results}
        print(json.dumps(line, ensure_ascii=False), flush=True)

    with sample_index(settings=settings) as (conn, embedder):
        base = options_from_settings(settings, k=args.k)
        squad = None
        if args.squad:
            squad = load_squad(args.squad)
            index_squad(conn, squad, embedder, "ablation")
        if not args.grid:
            emit("lexical rankers", "golden", _lexical(conn, golden, "kb", None))
            if squad is not None:
                emit("lexical rankers", "xquad", _lexical(conn, squad.cases, "ablation", "squad"))
        modes = ("hybrid",) if args.grid else ("hybrid", "vector", "lexical")
        synonyms = settings.search.synonyms_path
        chosen = grid(base, synonyms) if args.grid else variants(base, synonyms)
        for name, options in tqdm(chosen.items(), desc="variants"):
            emit(
                name,
                "golden",
                run(
                    golden,
                    conn,
                    embedder,
                    options,
                    lambda h: f"{h.source}:{h.external_id}",
                    modes,
                ),
            )
            if squad is not None:
                emit(
                    name,
                    "xquad",
                    run(
                        squad.cases,
                        conn,
                        embedder,
                        replace(options, namespace="ablation"),
                        lambda h: f"{SQUAD_SOURCE}:{h.external_id}",
                        modes,
                    ),
                )


def _lexical(conn: Any, cases: Any, namespace: str, source: str | None) -> dict[str, Any]:
    from evals.lexical_variants import compare
    from kb_core.index.versions import active_version

    keys = {
        int(doc_id): f"{source or doc_source}:{external_id}"
        for doc_id, doc_source, external_id in conn.execute(
            "SELECT id, source, external_id FROM documents WHERE namespace = %s", (namespace,)
        )
    }
    return compare(conn, active_version(conn, namespace), cases, keys.__getitem__)


if __name__ == "__main__":
    main()
