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
    from evals.retrieval import evaluate_modes, load_golden
    from evals.sample_kb import sample_index
    from kb_core.settings import get_settings

    settings = get_settings()
    cases = load_golden()
    report: dict[str, object] = {"golden_cases": len(cases)}
    for label, scrub in (("without_scrubbing", False), ("with_scrubbing", True)):
        with sample_index(scrub=scrub, settings=settings) as (conn, embedder):
            report[label] = evaluate_modes(conn, embedder, cases, settings=settings)
    print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main()
