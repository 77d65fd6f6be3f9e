"""Scale, measured in one run and printed as ratios: scoring as the input grows, Dask against one
process, causal against windowed event codes.

1. ``pipeline score`` (hybrid model: codes and baseline features) on simulated inputs 1x, 4x and
   16x in size, each in a fresh process with ``bucket_rows`` = the 1x size (larger inputs are
   streamed bucket by bucket): events/s, seconds over the linear extrapolation from 1x (target
   <= 1.0 plus noise), and peak RSS over the 1x run's (target: bounded, about 1.0 however large).
2. ``--engine dask`` on a LocalCluster of 2 worker processes against one process on the 4x input:
   rows, key equality and the largest score difference (target: equal, <= 1e-5).
3. Event codes of a causal encoder (one pass per entity) against the windowed encoder (every event
   re-reads its window) at ``max_len`` 64, same data and sizes: events/s ratio (target >= 5).

Usage: python scripts/bench_scale.py [--accounts 300] [--threads 2]
Run it alone: two jobs on 2 cores slow each other by far more than 2x.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SCORE_CHILD = """
import json, resource, sys, time, torch
torch.set_num_threads({threads})
from pipelines.scoring.batch import score_events
start = time.perf_counter()
rows = score_events({enc!r}, {clf!r}, {events!r}, {out!r}, bucket_rows={bucket})
print(json.dumps({{"rows": rows, "seconds": time.perf_counter() - start,
                   "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def simulate(accounts: int, path: Path, seed: int) -> int:
    from pipelines.simulate.demo import simulate_events
    frame = simulate_events(accounts, 56, seed)
    frame.to_parquet(path, index=False)
    return len(frame)


def score_in_child(enc, clf, events, out, bucket: int, threads: int) -> dict:
    code = SCORE_CHILD.format(threads=threads, enc=str(enc), clf=str(clf), events=str(events), out=str(out), bucket=bucket)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def models(events: Path, out: Path, threads: int) -> Path:
    """A short compare on the 1x input: its encoder and hybrid classifier are what is scored."""
    from encoder import EncoderConfig
    from pipelines.evaluation.compare import run_compare
    from pipelines.evaluation.report import write_report
    cfg = EncoderConfig.of(max_len_cap=32, epochs=2, patience=3)
    result = run_compare(events, "account", "ts", "is_fraud", config=cfg, unit="event", n_boot=10, seed=0)
    write_report(result, out)
    return out / "models"


def scaling(tmp: Path, accounts: int, threads: int) -> None:
    sizes = {}
    for factor in (1, 4, 16):
        sizes[factor] = simulate(accounts * factor, tmp / f"events_{factor}x.parquet", seed=factor)
    m = models(tmp / "events_1x.parquet", tmp / "report", threads)
    print(f"\n1. pipeline score, one process, bucket_rows = {sizes[1]} (the 1x input)")
    print("| input | events | seconds | events/s | seconds / (factor x 1x seconds) | peak RSS MB | RSS / 1x RSS |")
    print("|---|---|---|---|---|---|---|")
    base = None
    for factor, n in sizes.items():
        r = score_in_child(m / "encoder", m / "hybrid", tmp / f"events_{factor}x.parquet",
                           tmp / f"scores_{factor}x.parquet", sizes[1], threads)
        base = base or r
        print(f"| {factor}x | {n} | {r['seconds']:.1f} | {n / r['seconds']:.0f} | "
              f"{r['seconds'] / (factor * base['seconds']):.2f} | {r['rss_mb']:.0f} | {r['rss_mb'] / base['rss_mb']:.2f} |",
              flush=True)
    dask_equality(m, tmp)


def dask_equality(m: Path, tmp: Path) -> None:
    import numpy as np
    import pandas as pd

    from pipelines.scoring.dask_batch import score_dask
    start = time.perf_counter()
    rows, files = score_dask(m / "encoder", m / "hybrid", tmp / "events_4x.parquet", tmp / "scores_dask", workers=2)
    seconds = time.perf_counter() - start
    key = ["account", "ts"]
    one = pd.read_parquet(tmp / "scores_4x.parquet").sort_values(key, kind="stable").reset_index(drop=True)
    many = pd.read_parquet(tmp / "scores_dask").sort_values(key, kind="stable").reset_index(drop=True)
    same_keys = one[key].equals(many[key]) and (one["decision"] == many["decision"]).all()
    diff = float(np.abs(one["score"].to_numpy() - many["score"].to_numpy()).max())
    print(f"\n2. Dask LocalCluster (2 worker processes) vs one process, 4x input: {rows} rows in {files} files "
          f"({seconds:.1f} s incl. cluster start); keys and decisions equal: {same_keys}; "
          f"largest score difference {diff:.1e} ({'OK' if same_keys and diff <= 1e-5 else 'DIFFERENT'})")


def causal_vs_windowed(tmp: Path, threads: int) -> None:
    from encoder import EncoderConfig, SequenceEncoder
    events = tmp / "events_4x.parquet"
    seconds = {}
    for causal in (False, True):
        cfg = EncoderConfig.of(unit="event", max_len=64, causal=causal, epochs=1, max_sequences_per_epoch=2000)
        enc = SequenceEncoder("account", "ts", "is_fraud", cfg).fit(events)
        data, arrays = enc.prepare(events)
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            for _ in enc.iter_prepared(data, arrays, "event", 1024):
                pass
            best = min(best, time.perf_counter() - start)
        seconds[causal] = best
    n = len(arrays)
    print(f"\n3. event codes at max_len 64, {n} events (4x input), best of 3: windowed {n / seconds[False]:.0f} events/s, "
          f"causal one pass {n / seconds[True]:.0f} events/s: ratio {seconds[False] / seconds[True]:.1f}x "
          f"({'OK' if seconds[False] / seconds[True] >= 5 else 'BELOW'} target 5x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=300, help="Accounts of the 1x input (about 60 events each).")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        scaling(Path(tmp), args.accounts, args.threads)
        causal_vs_windowed(Path(tmp), args.threads)


if __name__ == "__main__":
    main()
