"""Scoring on worker processes: each holds its own ``OnlineScorer`` (models loaded once, its own
connection to the shared state store), so requests score in parallel on every core and the
service's event loop never waits for the GIL of a scoring thread.

Per-entity order and atomicity are those of one process: the scorers share one set of entity
locks (``LOCK_STRIPES`` process-shared locks, taken in one order), and every request reads its
entities' states from the store inside those locks and commits them in one transaction. Any idle
worker takes the next request. Each worker talks to the service over a pipe of its own: a request
costs one message each way, and a worker whose service is gone reads the end of its pipe and exits.
"""
from __future__ import annotations

import gc
import multiprocessing
import queue

from encoder.io.errors import InputError
from pipelines.scoring.online import LOCK_STRIPES, OnlineScorer


class WorkerDied(RuntimeError):
    """A scoring process ended while it held a request (HTTP 503)."""


def _serve(conn, encoder_dir, classifier_dir, store, locks, threads: int, options: dict) -> None:
    """A worker's life: load the models, say so, then score each request the pipe brings."""
    try:
        scorer = OnlineScorer(encoder_dir, classifier_dir, store, locks=locks, **options)
        scorer.use_threads(threads)
    except Exception as exc:  # the service refuses to start, with this line
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        return
    gc.collect()
    gc.freeze()  # what was loaded once leaves the collector's scans: steadier tail latency
    conn.send(("ready", None))
    while True:
        try:
            records = conn.recv()
        except (EOFError, OSError):  # the service is gone
            return
        try:
            answer = ("ok", scorer.score(records))
        except Exception as exc:  # InputError and its kinds are answered as the service answers them
            answer = ("error", exc)
        try:
            conn.send(answer)
        except (BrokenPipeError, OSError):
            return
        except Exception as exc:  # an error that does not pickle: its line still reaches the service
            conn.send(("error", RuntimeError(f"{type(answer[1]).__name__}: {answer[1]} ({exc})")))


class ScoringPool:
    """``workers`` processes scoring for one service; ``score(records)`` (from any thread) is
    ``OnlineScorer.score`` on an idle worker, its errors raised as they are. The store must be one
    every process can open: an SQLite file or a Redis URL."""

    def __init__(self, encoder_dir, classifier_dir, store, workers: int, threads: int = 1, **options):
        if workers < 2:
            raise InputError(f"a scoring pool needs at least 2 workers, got {workers}")
        context = multiprocessing.get_context("spawn")  # no fork of a process that holds torch's threads
        self.locks = [context.Lock() for _ in range(LOCK_STRIPES)]
        self.idle: queue.SimpleQueue = queue.SimpleQueue()
        self.processes, conns = [], []
        self.alive = workers
        for _ in range(workers):
            ours, theirs = context.Pipe()
            process = context.Process(target=_serve, args=(theirs, str(encoder_dir), str(classifier_dir), str(store),
                                                           self.locks, threads, options), daemon=True)
            process.start()
            theirs.close()
            self.processes.append(process)
            conns.append(ours)
        for conn in conns:  # every worker has loaded its models before the service answers
            try:
                kind, message = conn.recv()
            except EOFError:
                kind, message = "error", "it exited"
            if kind != "ready":
                self.close()
                raise InputError(f"a scoring worker failed to start: {message}")
            self.idle.put(conn)

    def score(self, records) -> list[dict]:
        while True:  # wait while every worker is busy; refuse at once when none is left
            try:
                conn = self.idle.get(timeout=0.5)
                break
            except queue.Empty:
                if self.alive == 0:
                    raise WorkerDied("every scoring worker process has died") from None
        try:
            conn.send(records)
            kind, value = conn.recv()
        except (EOFError, OSError):
            conn.close()  # this worker is gone: the others go on
            self.alive -= 1
            raise WorkerDied("a scoring worker process died") from None
        self.idle.put(conn)
        if kind == "error":
            raise value
        return value

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes]

    def close(self) -> None:
        """Stop the workers (each after the request it holds) and free the shared locks."""
        while True:
            try:
                self.idle.get_nowait().close()  # the worker reads the end of its pipe and exits
            except queue.Empty:
                break
        for process in self.processes:
            process.join(5)
            if process.is_alive():
                process.terminate()
        self.locks.clear()
