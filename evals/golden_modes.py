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

    from evals.retrieval import evaluate_modes, load_golden
    from evals.sample_kb import sample_index
    from kb_core.settings import get_settings

    settings = get_settings()
    cases = load_golden()
    with sample_index(settings=settings) as (conn, embedder):
        results = evaluate_modes(conn, embedder, cases, settings=settings)
    if args.json:
        print(json.dumps({"golden_cases": len(cases), **results}))
        return
    for mode, metrics in results.items():
        print(mode, metrics)


if __name__ == "__main__":
    main()
