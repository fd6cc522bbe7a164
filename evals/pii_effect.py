"""What scrubbing costs retrieval: the golden set with and without PII scrubbing.

Indexes the sample knowledge base twice (same chunker and embedder), with and without
scrubbing, and runs the golden set against both in every search mode (document-level
metrics). Prints one JSON object.

    .venv/bin/python -m evals.pii_effect
"""

from __future__ import annotations

import json
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def main() -> None:
    from evals.retrieval import evaluate, load_golden
    from evals.sample_kb import sample_index
    from kb_core.search import MODES, options_from_settings, search
    from kb_core.settings import get_settings

    cases = load_golden()
    report: dict[str, object] = {"golden_cases": len(cases)}
    for label, scrub in (("without_scrubbing", False), ("with_scrubbing", True)):
        results: dict[str, object] = {}
        with sample_index(scrub=scrub) as (conn, embedder):
            for mode in MODES:
                options = options_from_settings(get_settings(), mode=mode, k=10)

                def ranked(question: str) -> list[str]:
                    hits = search(conn, embedder, question, options)  # noqa: B023
                    return [f"{h.source}:{h.external_id}" for h in hits]

                results[mode] = evaluate(cases, ranked)
        report[label] = results
    print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main()
