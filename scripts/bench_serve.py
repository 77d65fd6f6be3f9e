"""Online scoring service, measured on loopback in one run: latency, throughput, history independence.

Starts ``seqae pipeline serve`` (hybrid model of a short compare on simulated events, SQLite state)
in a subprocess on 127.0.0.1, waits for ``/health``, then:

1. single-event requests, warm model: latency p50/p90/p99 (target p99 <= 10 ms on 2 cores);
2. batched requests (``--batch`` events each, many entities): events/s (target >= 1000);
3. per-event cost against history: an entity with 1000 prior events (2 hours apart, so the tail is
   the encoder's window) against entities with 1 prior event, ``--requests`` single-event requests
   each, interleaved: ratio of median latencies (target within 1.5x);
4. head of line: ``/health`` probed while a 2000-event batch is scored (target: slowest <= 50 ms);
5. concurrency: ``--requests`` single-event requests from 8 client threads against 1 (target >= 1.3x).

``--model hybrid_joint`` serves the one-model hybrid instead of the stacked one (two boosters).

Usage: python scripts/bench_serve.py [--requests 300] [--batch 100] [--threads 1] [--workers 2] [--model hybrid]
Run it alone: the service and the client share the 2 cores.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.scoring.online import _plain  # noqa: E402
from pipelines.scoring.replay import post  # noqa: E402


def make_models(d: Path) -> Path:
    from click.testing import CliRunner

    from pipelines.cli import main
    from pipelines.simulate.demo import simulate_events
    simulate_events(300, 28, 0).to_parquet(d / "events.parquet")
    r = CliRunner().invoke(main, ["pipeline", "compare", str(d / "events.parquet"), "--id", "account", "--time", "ts",
                                  "--label", "is_fraud", "--out", str(d / "report"), "--epochs", "2", "--bootstrap", "10",
                                  "--variants"])  # hybrid_joint is a variant
    assert r.exit_code == 0, r.output
    return d / "report" / "models"


def templates(d: Path) -> list[dict]:
    """Event rows of the simulated table (features only), to be re-keyed and re-timed."""
    import pandas as pd
    frame = pd.read_parquet(d / "events.parquet").drop(columns=["is_fraud"])
    return [{k: _plain(v) for k, v in r.items()} for r in frame.to_dict("records")]


def event(template: dict, account: str, seconds: float) -> dict:
    return template | {"account": account, "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) +
                       f".{int(seconds * 1000) % 1000:03d}+00:00"}


def timed(url: str, payload) -> float:
    start = time.perf_counter()
    status, answer = post(url, payload)
    elapsed = (time.perf_counter() - start) * 1000
    assert status == 200, answer
    return elapsed


def start_service(models: Path, state: Path, port: int, threads: int, model: str = "hybrid",
                  workers: int = 1) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "pipelines", "pipeline", "serve", "--encoder", str(models / "encoder"),
                             "--classifier", str(models / model), "--state", str(state), "--port", str(port),
                             "--threads", str(threads), "--workers", str(workers)], stderr=subprocess.PIPE, text=True)
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                json.loads(r.read())
                return proc
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"service did not start: {proc.stderr.read()}")
            time.sleep(0.1)
    raise SystemExit("service did not answer /health within 60 s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1, help="the service's --threads")
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--model", default="hybrid", choices=("hybrid", "hybrid_joint"), help="the compare's model to serve")
    ap.add_argument("--workers", type=int, default=2, help="the service's --workers (scoring processes) [2, its default]")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        models = make_models(d)
        rows = templates(d)
        proc = start_service(models, d / "state.sqlite", args.port, args.threads, args.model, args.workers)
        url = f"http://127.0.0.1:{args.port}/score"
        try:
            t0 = 1.8e9
            for i in range(20):  # warm-up
                timed(url, event(rows[i], f"warm{i}", t0))
            single = [timed(url, event(rows[i % len(rows)], f"single{i}", t0 + i)) for i in range(args.requests)]
            p = {q: np.percentile(single, q) for q in (50, 90, 99)}
            print(f"1. single-event requests ({args.requests}): p50 {p[50]:.1f} ms, p90 {p[90]:.1f} ms, "
                  f"p99 {p[99]:.1f} ms: p99 / 10 ms = {p[99] / 10:.2f} ({'OK' if p[99] <= 10 else 'OVER'})", flush=True)

            n_batches = max(1, args.requests // 10)
            start = time.perf_counter()
            for b in range(n_batches):
                batch = [event(rows[(b * args.batch + j) % len(rows)], f"batch{j}", t0 + 60 * b + j / 1000)
                         for j in range(args.batch)]
                timed(url, batch)
            rate = n_batches * args.batch / (time.perf_counter() - start)
            print(f"2. batched requests ({n_batches} x {args.batch} events, {args.batch} entities): {rate:.0f} events/s: "
                  f"{rate / 1000:.2f} x the 1000 events/s target ({'OK' if rate >= 1000 else 'BELOW'})", flush=True)

            history = [event(rows[j % len(rows)], "long", t0 - 7200 * (1000 - j)) for j in range(1000)]
            for j in range(0, 1000, 100):  # 1000 prior events for one entity (a batch is scored event by event)
                timed(url, history[j:j + 100])
            short, long = [], []
            for i in range(args.requests):
                timed(url, event(rows[i % len(rows)], f"fresh{i}", t0 - 10))  # 1 prior event
                short.append(timed(url, event(rows[(i + 1) % len(rows)], f"fresh{i}", t0 + i)))
                long.append(timed(url, event(rows[(i + 2) % len(rows)], "long", t0 + i)))
            ratio = np.median(long) / np.median(short)
            print(f"3. per-event latency, 1000 prior events vs 1: median {np.median(long):.1f} vs {np.median(short):.1f} ms: "
                  f"ratio {ratio:.2f} ({'OK' if ratio <= 1.5 else 'OVER'} 1.5)", flush=True)

            big = [event(rows[j % len(rows)], f"hol{j % 500}", t0 + 1e5 + j) for j in range(2000)]
            batch_ms, waits = [], []
            worker = threading.Thread(target=lambda: batch_ms.append(timed(url, big)))
            worker.start()
            health = url.rsplit("/", 1)[0] + "/health"
            while worker.is_alive():
                start = time.perf_counter()
                with urllib.request.urlopen(health, timeout=30) as r:
                    r.read()
                waits.append((time.perf_counter() - start) * 1000)
                time.sleep(0.01)
            worker.join()
            print(f"4. head of line: /health during a 2000-event batch ({batch_ms[0]:.0f} ms): {len(waits)} probes, "
                  f"slowest {max(waits):.1f} ms: {max(waits) / 50:.2f} x 50 ms ({'OK' if max(waits) <= 50 else 'OVER'})",
                  flush=True)

            def clients(n: int, tag: str) -> float:
                payloads = [event(rows[i % len(rows)], f"{tag}{i}", t0 + 2e5 + i) for i in range(args.requests)]
                start = time.perf_counter()
                with concurrent.futures.ThreadPoolExecutor(n) as pool:
                    list(pool.map(lambda p: timed(url, p), payloads))
                return args.requests / (time.perf_counter() - start)
            one, eight = clients(1, "c1-"), clients(8, "c8-")
            print(f"5. concurrency: {eight:.0f} events/s from 8 clients against {one:.0f} from 1: "
                  f"{eight / one:.2f}x ({'OK' if eight / one >= 1.3 else 'BELOW'} 1.3)", flush=True)
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    main()
