"""Per-entity state stores for online scoring: an SQLite file by default, Redis when given a URL.

A store maps an entity key (the id as JSON text) to its ``EntityState`` (JSON). ``put_many``
writes all the states of one request in a single transaction, so a request is stored whole or
not at all, and a crash loses no committed state. With ``ttl`` (seconds), entities idle for longer
are forgotten: a later event starts them afresh.
"""
from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
import threading
import time
from pathlib import Path

from encoder.io.errors import InputError


@dataclasses.dataclass
class EntityState:
    """What scoring an entity's next event needs (``online.OnlineScorer``), stored as JSON."""

    count: int = 0
    last_time: float = -math.inf
    tail: dict = dataclasses.field(default_factory=dict)       # column -> list of raw values; TIME -> seconds
    tail_new: dict = dataclasses.field(default_factory=dict)   # categorical column -> 0/1 per tail row
    seen: dict = dataclasses.field(default_factory=dict)       # categorical column -> {value: times seen}
    carry: dict | None = None                                  # causal encoder: h, c, sum, max, n (trend_*) as lists
    results: dict = dataclasses.field(default_factory=dict)    # event key -> its answer, the latest RESULTS_KEPT
    updated: float = 0.0                                       # wall-clock seconds of the last write

    def to_json(self) -> str:
        return json.dumps(vars(self), allow_nan=True)  # the fields, as they are (no deep copy)

    @classmethod
    def from_json(cls, text: str) -> "EntityState":
        return cls(**json.loads(text))


def open_store(location: str | Path, ttl: float | None = None):
    """``SQLiteStore`` for a path, ``RedisStore`` for a ``redis://`` URL."""
    text = str(location)
    if text.startswith(("redis://", "rediss://", "unix://")):
        return RedisStore(text, ttl)
    return SQLiteStore(location, ttl)


OPEN_TIMEOUT_S = 30.0  # how long a state file waits for other processes: opening it, and SQLite's busy wait


class SQLiteStore:
    """States in one SQLite file (WAL journal): survives restarts, one writer at a time."""

    def __init__(self, path: str | Path, ttl: float | None = None):
        self.path, self.ttl = Path(path), ttl
        if not self.path.parent.exists():
            raise InputError(f"state file '{self.path}': directory '{self.path.parent}' does not exist")
        deadline = time.monotonic() + OPEN_TIMEOUT_S
        while True:
            try:
                self.db = self._open()
                break
            except sqlite3.OperationalError as exc:  # another process switching a new file to WAL: wait for it
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise InputError(f"state file '{self.path}' is not a usable SQLite database: {exc}") from None
                time.sleep(0.05)
            except sqlite3.DatabaseError as exc:
                raise InputError(f"state file '{self.path}' is not a usable SQLite database: {exc}") from None
        self.lock = threading.Lock()

    def _open(self) -> sqlite3.Connection:
        """A connection in WAL mode with the table made. Turning a new file to WAL can answer "database
        is locked" at once, without SQLite's busy wait, while another process opens it too."""
        db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=OPEN_TIMEOUT_S)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("CREATE TABLE IF NOT EXISTS entity_state (key TEXT PRIMARY KEY, state TEXT NOT NULL, "
                       "updated REAL NOT NULL)")
            db.execute("CREATE INDEX IF NOT EXISTS entity_state_updated ON entity_state (updated)")
        except BaseException:
            db.close()
            raise
        return db

    def get_many(self, keys: list[str]) -> dict:
        if not keys:
            return {}
        oldest = time.time() - self.ttl if self.ttl else -1.0
        with self.lock:
            rows = []
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                rows += self.db.execute(f"SELECT key, state FROM entity_state WHERE updated >= ? AND key IN "
                                        f"({','.join('?' * len(chunk))})", [oldest, *chunk]).fetchall()
        return {k: EntityState.from_json(s) for k, s in rows}

    def put_many(self, states: dict) -> None:
        with self.lock:
            self.db.execute("BEGIN IMMEDIATE")
            try:
                self.db.executemany("INSERT OR REPLACE INTO entity_state (key, state, updated) VALUES (?, ?, ?)",
                                    [(k, st.to_json(), st.updated) for k, st in states.items()])
                if self.ttl:
                    self.db.execute("DELETE FROM entity_state WHERE updated < ?", (time.time() - self.ttl,))
                self.db.execute("COMMIT")
            except BaseException:
                self.db.execute("ROLLBACK")
                raise

    def count(self) -> int:
        with self.lock:
            return self.db.execute("SELECT COUNT(*) FROM entity_state").fetchone()[0]

    def items(self) -> list[tuple[str, str]]:
        with self.lock:
            return self.db.execute("SELECT key, state FROM entity_state ORDER BY key").fetchall()

    def close(self) -> None:
        self.db.close()


class RedisStore:
    """States as Redis strings under ``seqae:state:<key>``, written in one MULTI/EXEC per request;
    ``ttl`` becomes each key's expiry."""

    PREFIX = "seqae:state:"

    def __init__(self, url: str, ttl: float | None = None):
        try:
            import redis
        except ImportError:
            raise InputError("a redis:// state store needs the redis package: pip install redis") from None
        self.ttl = ttl
        self.db = redis.Redis.from_url(url)
        try:
            self.db.ping()
        except redis.RedisError as exc:
            raise InputError(f"cannot reach the Redis state store at '{url}': {exc}") from None

    def get_many(self, keys: list[str]) -> dict:
        if not keys:
            return {}
        values = self.db.mget([self.PREFIX + k for k in keys])
        return {k: EntityState.from_json(v) for k, v in zip(keys, values) if v is not None}

    def put_many(self, states: dict) -> None:
        pipe = self.db.pipeline(transaction=True)
        for k, st in states.items():
            pipe.set(self.PREFIX + k, st.to_json(), ex=int(self.ttl) if self.ttl else None)
        pipe.execute()

    def count(self) -> int:
        return sum(1 for _ in self.db.scan_iter(self.PREFIX + "*"))

    def items(self) -> list[tuple[str, str]]:
        keys = sorted(k.decode() for k in self.db.scan_iter(self.PREFIX + "*"))
        return [(k[len(self.PREFIX):], self.db.get(k).decode()) for k in keys]

    def close(self) -> None:
        self.db.close()
