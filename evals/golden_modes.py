"""Retrieval quality of each search mode on the sample golden set.

    .venv/bin/python -m evals.golden_modes [--json]

Prints, per mode (hybrid, vector, lexical), document-level hit@1, hit@5, MRR@10 and
nDCG@10 over the golden questions, on a fresh index of the sample knowledge base.
"""

from __future__ import annotations

import argparse
import json
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from evals.retrieval import evaluate, load_golden
    from evals.sample_kb import sample_index
    from kb_core.search import MODES, options_from_settings, search
    from kb_core.settings import get_settings

    cases = load_golden()
    report: dict[str, object] = {"golden_cases": len(cases)}
    with sample_index() as (conn, embedder):
        for mode in MODES:
            options = options_from_settings(get_settings(), mode=mode, k=10)

            def ranked(question: str) -> list[str]:
                hits = search(conn, embedder, question, options)  # noqa: B023
                return [f"{h.source}:{h.external_id}" for h in hits]

            report[mode] = evaluate(cases, ranked)
    if args.json:
        print(json.dumps(report))
        return
    for mode in MODES:
        print(mode, report[mode])


if __name__ == "__main__":
    main()
