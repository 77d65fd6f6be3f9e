"""Scoring on worker processes: each holds its own ``OnlineScorer`` (models loaded once, its own
connection to the shared state store), so requests score in parallel on every core and the
service's event loop never waits for the GIL of a scoring thread.

Per-entity order and atomicity are those of one process: the scorers share one set of entity
locks (``LOCK_STRIPES`` process-shared locks, taken in one order), and every request reads its
entities' states from the store inside those locks and commits them in one transaction. Any free
worker takes the next request.
"""
from __future__ import annotations

import concurrent.futures
import multiprocessing

from encoder.io.errors import InputError
from pipelines.scoring.online import LOCK_STRIPES, OnlineScorer

_scorer: OnlineScorer | None = None  # this worker process's scorer


def _start(encoder_dir, classifier_dir, store, locks, threads: int, options: dict) -> None:
    global _scorer
    _scorer = OnlineScorer(encoder_dir, classifier_dir, store, locks=locks, **options)
    _scorer.use_threads(threads)


def _score(records) -> list[dict]:
    return _scorer.score(records)


def _ready() -> bool:
    return _scorer is not None


class ScoringPool:
    """``workers`` processes scoring for one service; ``submit(records)`` returns a future of
    ``OnlineScorer.score``'s results (its errors raised as they are). The store must be one every
    process can open: an SQLite file or a Redis URL."""

    def __init__(self, encoder_dir, classifier_dir, store, workers: int, threads: int = 1, **options):
        if workers < 2:
            raise InputError(f"a scoring pool needs at least 2 workers, got {workers}")
        context = multiprocessing.get_context("spawn")  # no fork of a process that holds torch's threads
        locks = [context.Lock() for _ in range(LOCK_STRIPES)]
        self.executor = concurrent.futures.ProcessPoolExecutor(
            workers, mp_context=context, initializer=_start,
            initargs=(str(encoder_dir), str(classifier_dir), str(store), locks, threads, options))
        # every worker loads its models now, not on the first requests it takes
        pending = [self.executor.submit(_ready) for _ in range(workers)]
        for future in pending:
            try:
                future.result()
            except concurrent.futures.process.BrokenProcessPool:
                self.executor.shutdown(cancel_futures=True)
                raise InputError("a scoring worker failed to start: run with --workers 1 to see why") from None

    def submit(self, records) -> concurrent.futures.Future:
        return self.executor.submit(_score, records)

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)
