"""Replay an event table against a running scoring service, in time order, and time each request."""
from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.parse
from pathlib import Path

import numpy as np
import pandas as pd

from encoder import events as ev
from encoder.io.errors import InputError
from pipelines.scoring.online import _plain


_connections = threading.local()  # each thread's open connections, by (scheme, host, port)


def post(url: str, payload, timeout: float = 30.0) -> tuple[int, dict]:
    """POST ``payload`` as JSON; the status and the decoded JSON answer. The connection stays open
    for the next request from this thread (keep-alive); one that the service closed meanwhile is
    opened again and the request sent again, which the service's idempotent retries make safe."""
    parts = urllib.parse.urlsplit(url)
    key = (parts.scheme, parts.hostname, parts.port)
    body = json.dumps(payload).encode()
    pool = _connections.__dict__.setdefault("open", {})
    for attempt in (0, 1):
        conn = pool.get(key)
        if conn is None:
            kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
            conn = pool[key] = kind(parts.hostname, parts.port, timeout=timeout)
        try:
            conn.request("POST", parts.path or "/", body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            data = response.read()
            return response.status, json.loads(data or b"{}")
        except (http.client.RemoteDisconnected, http.client.CannotSendRequest, ConnectionResetError,
                BrokenPipeError) as exc:
            conn.close()
            pool.pop(key, None)
            if attempt:
                raise InputError(f"cannot reach the service at '{url}': {exc}") from None
        except OSError as exc:  # refused, unreachable, timed out
            conn.close()
            pool.pop(key, None)
            raise InputError(f"cannot reach the service at '{url}': {exc}") from None
    raise AssertionError("unreachable")


def replay(events, url: str, time_col: str, batch: int = 1, rate: float | None = None,
           limit: int | None = None) -> tuple[pd.DataFrame, dict]:
    """Send the events of ``events`` (a path) to ``url``/score in time order (ties in file order),
    ``batch`` per request, at most ``rate`` events per second. Returns the results and a summary:
    latency percentiles (ms) per request, events/s, and the count of rejected requests."""
    frame = ev.read_events(events)
    if time_col not in frame.columns:
        raise InputError(f"--time column '{time_col}' is not in '{events}'")
    order = np.argsort(ev.time_values(frame[time_col], events), kind="stable")
    frame = frame.iloc[order[:limit] if limit else order]
    records = [{k: _plain(v) for k, v in r.items()} for r in frame.to_dict("records")]
    score_url = url.rstrip("/") + "/score"
    latencies, results, rejected, first_error = [], [], 0, None
    started = time.perf_counter()
    for i in range(0, len(records), batch):
        chunk = records[i:i + batch]
        if rate:
            wait = started + i / rate - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
        t0 = time.perf_counter()
        status, answer = post(score_url, chunk[0] if batch == 1 else chunk)
        latencies.append((time.perf_counter() - t0) * 1000)
        if status != 200:
            rejected += 1
            first_error = first_error or f"{status}: {answer.get('error')}"
            continue
        results += [answer] if batch == 1 else answer["results"]
    seconds = time.perf_counter() - started
    lat = np.asarray(latencies)
    summary = {"events": len(records), "requests": len(latencies), "rejected": rejected, "first_error": first_error,
               "seconds": seconds, "events_per_s": len(records) / seconds if seconds else float("inf"),
               **{f"p{q}_ms": float(np.percentile(lat, q)) for q in (50, 90, 99)}, "max_ms": float(lat.max())}
    return pd.DataFrame(results), summary


def write_results(results: pd.DataFrame, out: Path, overwrite: bool) -> None:
    from encoder.io.atomic import atomic_output
    with atomic_output(out, overwrite) as tmp:
        results.to_parquet(tmp, index=False)
