"""Benchmark of the first slice: embedded PostgreSQL start, and ingest throughput.

Builds a corpus of N distinct Russian articles from the bundled samples (paragraphs
shuffled and numbered so no two chunks share text), ingests it through the real Dagster
assets into a fresh embedded database, then runs the refresh again with nothing changed.
Prints one JSON object; nothing here is a test (timings vary with the machine).

    .venv/bin/python -m bench.ingest_slice --docs 300
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from bench.common import machine
from kb_core.settings import PROJECT_ROOT, Settings


def build_corpus(target: Path, docs: int, seed: int = 7) -> None:
    from kb_core.sources.files import iter_files
    from kb_core.text.front_matter import split_front_matter

    rng = random.Random(seed)
    paragraphs: list[str] = []
    for doc in iter_files(PROJECT_ROOT / "samples" / "kb_files"):
        body = split_front_matter(doc.raw_body)[1] if doc.raw_format == "markdown" else ""
        paragraphs += [p for p in body.split("\n\n") if p.strip() and not p.startswith("#")]
    for i in range(docs):
        picked = rng.sample(paragraphs, k=min(len(paragraphs), 14))
        sections = [
            f"## Раздел {j + 1}\n\n{p}\n\nПримечание {i}-{j}: проверено в версии {i % 7}.{j}."
            for j, p in enumerate(picked)
        ]
        text = f"# Статья поддержки №{i}\n\n" + "\n\n".join(sections) + "\n"
        (target / f"article-{i:05d}.md").write_text(text, "utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads of the embedder")
    args = parser.parse_args()

    import dagster as dg

    from kb_assets.assets import INGEST_ASSETS, INGEST_CHECKS
    from kb_assets.definitions import build_resources
    from kb_assets.resources import EmbedderResource
    from kb_core.db import embedded, open_database

    with tempfile.TemporaryDirectory(prefix="kb-bench-") as tmp:
        tmp_path = Path(tmp)
        corpus = tmp_path / "corpus"
        corpus.mkdir()
        build_corpus(corpus, args.docs)
        chars = sum(p.stat().st_size for p in corpus.iterdir())

        data_dir = tmp_path / "data"
        began = time.perf_counter()
        db = open_database(Settings.from_env(None, runtime={"data_dir": data_dir}))
        first_start = time.perf_counter() - began
        assert db.server is not None

        settings = Settings.from_env(None, runtime={"data_dir": data_dir}, files={"dir": corpus})
        resources = build_resources(settings, database_url=db.url)
        resources["embedder"] = EmbedderResource(threads=args.threads)

        def run() -> tuple[float, dict[str, dict[str, object]]]:
            started = time.perf_counter()
            result = dg.materialize([*INGEST_ASSETS, *INGEST_CHECKS], resources=resources)
            elapsed = time.perf_counter() - started
            assert result.success
            meta = {
                a.op.name: {
                    k: v.value
                    for m in result.asset_materializations_for_node(a.op.name)
                    for k, v in m.metadata.items()
                }
                for a in INGEST_ASSETS
            }
            return elapsed, meta

        full_s, full = run()
        again_s, again = run()
        chunks = int(full["pii_free_chunks"]["chunks_written"])  # type: ignore[call-overload]

    # Start on an existing data dir, as every `kb` command does: measured in a fresh
    # process, because a process that stopped its own server keeps a stale handle to it.
    with tempfile.TemporaryDirectory(prefix="kb-bench-") as tmp:
        data = Path(tmp)
        embedded.start(data, detach=True)
        embedded.stop(data)
        probe = (
            "import time, pathlib; from kb_core.db import embedded; t = time.perf_counter(); "
            f"embedded.start(pathlib.Path({str(data)!r})); print(time.perf_counter() - t)"
        )
        out = subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        )
        restart = float(out.stdout.strip().splitlines()[-1])

    report = {
        "machine": machine(),
        "docs": args.docs,
        "corpus_chars": chars,
        "chunks": chunks,
        "embed_threads": args.threads,
        "embedded_pg_first_start_s": round(first_start, 2),
        "embedded_pg_start_existing_data_dir_s": round(restart, 2),
        "full_ingest_s": round(full_s, 2),
        "full_ingest_chunks_per_s": round(chunks / full_s, 1),
        "embedding_only_chunks_per_s": full["chunk_embeddings"]["chunks_per_second"],
        "no_change_refresh_s": round(again_s, 2),
        "no_change_refresh_embedded": again["chunk_embeddings"]["embedded"],
    }
    print(json.dumps(report, ensure_ascii=False))


if __name__ == "__main__":
    main()
