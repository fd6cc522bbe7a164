"""Benchmark: PII scrubbing throughput on 3,000-character chunks of the sample content.

Chunks are cut from the sample tickets (full of personal data) and Confluence pages,
the way the pipeline sees them. Measures one process, then the worker pool the pipeline
uses (KB_PII_WORKERS), after a warm-up. Prints one JSON object.

    .venv/bin/python -m bench.pii_throughput --chunks 400 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import time

from bench.common import machine

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def sample_chunks(count: int, size: int = 3000) -> list[str]:
    from kb_core.sources.pyrus_tasks import TicketDocumentBuilder
    from kb_core.text.confluence import confluence_to_markdown
    from kb_fakes.confluence import ConfluenceStore
    from kb_fakes.pyrus import PyrusStore

    builder = TicketDocumentBuilder(bot_ids=frozenset({9000, 9001}))
    texts = [
        doc.raw_body
        for task in PyrusStore.from_samples().tasks.values()
        if (doc := builder.document(task)) is not None
    ]
    texts += [confluence_to_markdown(p.body) for p in ConfluenceStore.from_samples().pages.values()]
    corpus = "\n\n".join(texts)
    chunks = [corpus[i : i + size] for i in range(0, len(corpus) - size, size)]
    return (chunks * (count // max(1, len(chunks)) + 1))[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()

    from kb_core.pii.configured import ParallelScrubber, config_from_settings
    from kb_core.pii.scrubber import Scrubber
    from kb_core.settings import get_settings

    chunks = sample_chunks(args.chunks)
    config = config_from_settings(get_settings())
    single = Scrubber(config)
    single.scrub_many(chunks[:20])  # load models, warm caches
    started = time.perf_counter()
    single.scrub_many(chunks)
    one = time.perf_counter() - started

    with ParallelScrubber(config, args.workers) as pool:
        pool.scrub_many(chunks[:80])  # start the workers and warm them
        started = time.perf_counter()
        pool.scrub_many(chunks)
        many = time.perf_counter() - started

    print(
        json.dumps(
            {
                "machine": machine(),
                "chunks": len(chunks),
                "chunk_chars": 3000,
                "one_process_chunks_per_s": round(len(chunks) / one, 1),
                "workers": args.workers,
                "pool_chunks_per_s": round(len(chunks) / many, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
