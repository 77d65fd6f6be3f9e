"""Replay an event table against a running scoring service, in time order, and time each request."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd

from encoder import events as ev
from encoder.io.errors import InputError
from pipelines.scoring.online import _plain


def post(url: str, payload, timeout: float = 30.0) -> tuple[int, dict]:
    """POST ``payload`` as JSON; the status and the decoded JSON answer."""
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
    except urllib.error.URLError as exc:
        raise InputError(f"cannot reach the service at '{url}': {exc.reason}") from None


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
