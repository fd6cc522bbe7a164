"""The scrubber configured from settings, built once per process, and a parallel map."""

from __future__ import annotations

import hashlib
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import lru_cache

from kb_core.pii.scrubber import PiiConfig, Scrubber
from kb_core.settings import Settings

# Below this many texts a worker pool costs more (start-up, model loading) than it saves.
PARALLEL_MIN_TEXTS = 40


def config_from_settings(settings: Settings) -> PiiConfig:
    return PiiConfig.from_file(
        settings.pii.config,
        threshold=settings.pii.threshold,
        entities=settings.pii.entities,
        names=settings.pii.name_recognition,
    )


@lru_cache(maxsize=4)
def _scrubber(config: PiiConfig) -> Scrubber:
    return Scrubber(config)


def scrubber_from_settings(settings: Settings) -> Scrubber:
    return _scrubber(config_from_settings(settings))


def config_signature(config: PiiConfig) -> str:
    """Changes whenever scrubbing output could change (stored with chunks)."""
    text = repr(
        (
            sorted(config.entities),
            config.threshold,
            sorted(config.allow),
            config.allow_patterns,
            config.deny,
            config.names,
            # The people directory is left out: it changes daily, and re-scrubbing every
            # stored document on each change would re-fetch whole sources; new names
            # apply to what is fetched next, and `kb index rescrub` applies them to all.
            "recognizers-v2",
        )
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


_worker: Scrubber | None = None


def _init_worker(config: PiiConfig) -> None:
    global _worker
    _worker = Scrubber(config)


def _scrub_in_worker(text: str) -> str:
    assert _worker is not None
    return _worker.scrub(text)


class ParallelScrubber:
    """Scrubs batches of texts in worker processes (NER is CPU-bound and holds the GIL).

    Small batches run in this process; the pool starts on the first large batch and
    lives until :meth:`close`.
    """

    def __init__(self, config: PiiConfig, workers: int) -> None:
        self.config = config
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def scrub_many(self, texts: Sequence[str]) -> list[str]:
        if self.workers <= 1 or len(texts) < PARALLEL_MIN_TEXTS:
            return _scrubber(self.config).scrub_many(texts)
        if self._pool is None:
            # spawn, not fork: the pipeline and the bot run threads (pools, servers) that a
            # forked child would inherit in an undefined state.
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(self.config,),
            )
        return list(self._pool.map(_scrub_in_worker, texts, chunksize=4))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> ParallelScrubber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
