"""Fraud benchmark: does the event-level code add signal beyond point-in-time aggregates, seed by seed?

For each seed, the demo's simulator draws other accounts (``pipeline demo --seed S`` data), and
``pipeline compare`` runs with the demo's encoder options: time split, the encoder fitted on the
train period, the same XGBoost for every model. One row per seed: aggregates and hybrid PR-AUC with
their 95% entity-bootstrap intervals, and the paired difference hybrid minus aggregates with its
interval. The target (issue 11): the interval above zero in at least 4 of 5 seeds.

Usage: python scripts/benchmark_fraud.py [--seeds 0,1,2,3,4] [--accounts 1500] [--set KEY=VALUE ...]

``--set`` overrides an encoder option for every seed (e.g. ``--set surprise=false``), to measure
one idea against the defaults on the same seeds.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def run_seed(seed: int, accounts: int, days: int, overrides: dict) -> dict:
    """Simulate, compare, and return the metrics of one seed."""
    from pipelines.cli import pipeline_config
    from pipelines.compare import run_compare
    from pipelines.simulate import simulate_events
    cfg = pipeline_config(None, "event", None, None, None).replace(**overrides)
    started = time.perf_counter()
    result = run_compare(simulate_events(accounts, days, seed), "account", "ts", "is_fraud", config=cfg,
                         unit="event", seed=seed)
    return result.metrics | {"seconds": time.perf_counter() - started}


def parse_set(items) -> dict:
    """``KEY=VALUE`` strings to encoder options; values are read as JSON when they parse."""
    out = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--accounts", type=int, default=1500)
    ap.add_argument("--days", type=int, default=56)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="Encoder option override.")
    args = ap.parse_args()
    torch.set_num_threads(2)
    overrides = parse_set(args.set)
    rows, above = [], 0
    print("| seed | aggregates PR-AUC | latent PR-AUC | hybrid PR-AUC | hybrid - aggregates | 95% interval | above zero | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for seed in (int(s) for s in args.seeds.split(",")):
        m = run_seed(seed, args.accounts, args.days, overrides)
        agg, lat, hyb = (m["models"][k] for k in ("aggregates", "latent", "hybrid"))
        d = m["paired"]["hybrid_vs_aggregates"]["pr_auc"]
        ok = d["ci"][0] > 0
        above += ok
        fmt = lambda e: f"{e['pr_auc']:.3f} [{e['pr_auc_ci'][0]:.3f}, {e['pr_auc_ci'][1]:.3f}]"  # noqa: E731
        print(f"| {seed} | {fmt(agg)} | {fmt(lat)} | {fmt(hyb)} | {d['diff']:+.3f} | "
              f"[{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}] | {'yes' if ok else 'no'} | {m['seconds']:.0f} |", flush=True)
        rows.append(d["diff"])
    n = len(rows)
    print(f"\nhybrid beats aggregates with a 95% interval above zero in {above} of {n} seeds "
          f"(target: at least 4 of 5): {'OK' if above >= 4 * n / 5 else 'BELOW'}; mean difference "
          f"{sum(rows) / n:+.3f}" + (f"; options {overrides}" if overrides else ""))


if __name__ == "__main__":
    main()
