"""Fraud benchmark: does the event code add signal beyond aggregates, hand-made sequence features, and its own untrained twin?

For each seed a simulator draws accounts (``--simulator demo``: the demo's generator, whose seeds
0-4 chose the event unit's defaults, so those rows are tuning data; ``--simulator terminals``: a
generator built unlike it, on which no default was chosen) and ``pipeline compare`` runs with the
demo's encoder options: time split, the encoder fitted on the train period, the same XGBoost for
every model, the same entity bootstrap for every paired difference. Per seed it prints PR-AUC with
95% intervals and these paired differences (headline first):

- ``hybrid - aggregates``: the codes' surprise channels stacked on the aggregates;
- ``hybrid - sequence``: against the aggregates plus five hand-made sequence features
  (``sequence_features``: the spread of the latest 3 and 5 time gaps, the change of the gap, the run
  of amount increases, the spread of the latest 3 amounts);
- ``hybrid - hybrid_untrained``: against the same hybrid built from the untrained twin's codes
  (``SequenceEncoder.untrained_twin``: only the trained weights differ);
- ``latent - untrained``: the learned code alone against the twin's.

A second table gives each block of the event code alone (``pooled``: the running LSTM summary;
``surprise``: how each event departs from what its history predicted) with the same classifier.

Usage: python scripts/benchmark_fraud.py [--seeds 0,1,2,3,4] [--accounts 1500] [--set KEY=VALUE ...]
       [--simulator demo|terminals] [--json RESULTS.json]

``--set`` overrides an encoder option for every seed (e.g. ``--set surprise=false``), to measure
one idea against the defaults on the same seeds.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from options import parse_set  # noqa: E402


def simulate(simulator: str, accounts: int, days: int, seed: int) -> pd.DataFrame:
    """Events of one seed from the demo's simulator (``demo``) or the handbook-style one (``terminals``)."""
    if simulator == "terminals":
        from pipelines.simulate.terminals import simulate_terminal_events
        return simulate_terminal_events(accounts, days, seed)
    from pipelines.simulate.demo import simulate_events
    return simulate_events(accounts, days, seed)


def run_seed(seed: int, accounts: int, days: int, overrides: dict, simulator: str = "demo") -> dict:
    """Simulate and compare one seed; returns the compare's metrics plus ``extra``: the paired
    differences against the sequence-feature model and the PR-AUC of each code block alone."""
    from pipelines.cli import pipeline_config
    from pipelines.evaluation.compare import run_compare
    cfg, preset = pipeline_config(None, "event", None, None, None)
    cfg = cfg.replace(**overrides)
    events = simulate(simulator, accounts, days, seed)
    started = time.perf_counter()
    result = run_compare(events, "account", "ts", "is_fraud", config=cfg, unit="event", seed=seed, preset=preset)
    out = result.metrics | {"seconds": time.perf_counter() - started}
    out["extra"] = controls(events, result, seed)
    return out


def sequence_features(times: np.ndarray, amount: np.ndarray, codes: np.ndarray) -> pd.DataFrame:
    """Hand-made order features of rows sorted by (entity, time), each from the row and its entity's
    earlier rows: std of the latest 3 and 5 log time gaps, the log gap minus the previous one, the
    run of consecutive amount increases ending at the row, std of the latest 3 log amounts (-1
    where the history is too short)."""
    by = pd.Series(codes)
    gap = pd.Series(np.log1p(np.maximum(np.diff(times, prepend=np.nan), 0.0)))
    gap[by.ne(by.shift())] = np.nan  # no gap before an entity's first event
    log_amount = pd.Series(np.log(np.maximum(amount, 1e-3)))

    def spread(x: pd.Series, k: int) -> np.ndarray:
        return x.groupby(by).rolling(k, min_periods=k).std().reset_index(level=0, drop=True).sort_index().to_numpy()

    up = (log_amount.groupby(by).diff() > 0).astype(np.int64)
    run = up.groupby((up != up.shift()).cumsum()).cumsum() * up  # consecutive increases so far
    out = {"seq_gap_std3": spread(gap, 3), "seq_gap_std5": spread(gap, 5),
           "seq_gap_change": gap.groupby(by).diff().to_numpy(), "seq_amount_rises": run.to_numpy(),
           "seq_amount_std3": spread(log_amount, 3)}
    return pd.DataFrame({k: np.nan_to_num(np.asarray(v, np.float64), nan=-1.0).astype(np.float32) for k, v in out.items()})


def controls(events: pd.DataFrame, result, seed: int) -> dict:
    """On the compare's own split, classifier and bootstrap: the aggregates plus ``sequence_features``
    (``sequence``) and each block of the event code alone (``block:NAME``), scored on the test
    period beside the compare's ``aggregates`` and ``hybrid``. Returns ``{"models": {name: metrics},
    "paired": {"a_vs_b": metrics}}`` as ``pipelines.evaluation.bootstrap.evaluate_models``."""
    from classifier import LatentClassifier
    from pipelines.evaluation.bootstrap import evaluate_models
    from pipelines.evaluation.compare import model_columns
    from pipelines.features import features_in_output_order
    enc = result.encoder
    data, arrays = enc.prepare(events, keep_frame=True, unit="event")
    base = features_in_output_order(result.recipe, data, "event")  # (N, F) in input order, as the compare's
    sorted_amount = data.frame["amount"].to_numpy(np.float64)[data.order]
    extra = sequence_features(data.times, sorted_amount, data.codes)  # sorted rows
    inverse = np.empty_like(data.order)
    inverse[data.order] = np.arange(len(data.order))
    codes = pd.concat(enc.iter_prepared(data, arrays, "event"), ignore_index=True)
    X = pd.concat([base, extra.iloc[inverse].reset_index(drop=True), codes.filter(regex=r"^z_\d+$")], axis=1)
    groups = {"sequence": model_columns(base.columns)["aggregates"] + list(extra.columns)}
    groups |= {f"block:{b.name}": list(b.columns) for b in enc.code_blocks() if b.width}
    period = result.split.output_period
    fit, test = np.isin(period, ["train", "valid"]), period == "test"
    y = events["is_fraud"].to_numpy()
    budget = result.metrics["alert_budget"]
    scores = {name: result.predictions[f"score_{name}"].to_numpy() for name in ("aggregates", "hybrid")}
    for name, cols in groups.items():
        clf = LatentClassifier(seed=seed, alert_budget=budget)
        clf.fit(X.loc[fit, cols].reset_index(drop=True), y[fit], validation=period[fit] == "valid")
        scores[name] = clf.predict_proba(X.loc[test, cols].reset_index(drop=True))[:, 1]
    return evaluate_models(y[test], scores, events["account"].to_numpy()[test],
                           n_boot=result.metrics["bootstrap"]["resamples"], seed=seed, budget=budget,
                           pairs=[("sequence", "aggregates"), ("hybrid", "sequence")])


PAIRS = (("hybrid", "aggregates"), ("hybrid", "sequence"), ("hybrid", "hybrid_untrained"), ("latent", "untrained"))


def pair_of(m: dict, a: str, b: str) -> dict:
    """The paired PR-AUC difference ``a - b`` of one seed, from the compare or the extra models."""
    key = f"{a}_vs_{b}"
    return (m["paired"].get(key) or m["extra"]["paired"][key])["pr_auc"]


def model_of(m: dict, name: str) -> dict:
    return m["models"].get(name) or m["extra"]["models"][name]


def ci(e: dict) -> str:
    return f"{e['pr_auc']:.3f} [{e['pr_auc_ci'][0]:.3f}, {e['pr_auc_ci'][1]:.3f}]"


def diff(d: dict) -> str:
    return f"{d['diff']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]"


def seed_table(runs: dict) -> str:
    """One row per seed: PR-AUC of the main models and the paired differences of ``PAIRS``."""
    models = ("aggregates", "sequence", "latent", "untrained", "hybrid", "hybrid_untrained")
    lines = ["| seed | " + " | ".join(f"{m} PR-AUC" for m in models) + " | "
             + " | ".join(f"{a} - {b} [95%]" for a, b in PAIRS) + " | seconds |",
             "|---|" + "---|" * (len(models) + len(PAIRS) + 1)]
    for seed, m in runs.items():
        lines.append(f"| {seed} | " + " | ".join(ci(model_of(m, x)) for x in models) + " | "
                     + " | ".join(diff(pair_of(m, a, b)) for a, b in PAIRS) + f" | {m['seconds']:.0f} |")
    n = len(runs)
    for a, b in PAIRS:
        d = [pair_of(m, a, b) for m in runs.values()]
        above = sum(x["ci"][0] > 0 for x in d)
        lines.append(f"\n{a} - {b}: 95% interval above zero in {above} of {n} seeds, below in "
                     f"{sum(x['ci'][1] < 0 for x in d)}; mean difference {np.mean([x['diff'] for x in d]):+.3f}")
    return "\n".join(lines)


def block_table(runs: dict) -> str:
    """Each code block alone, PR-AUC mean [min, max] over the seeds, beside the aggregates."""
    first = next(iter(runs.values()))
    names = ["aggregates", "sequence", "latent", "untrained"] + [k for k in first["extra"]["models"] if k.startswith("block:")]
    lines = ["| model | PR-AUC, mean [min, max] over seeds |", "|---|---|"]
    for name in names:
        v = np.array([model_of(m, name)["pr_auc"] for m in runs.values()])
        lines.append(f"| {name} | {v.mean():.3f} [{v.min():.3f}, {v.max():.3f}] |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2,3,4")
    ap.add_argument("--accounts", type=int, default=1500)
    ap.add_argument("--days", type=int, default=56)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="Encoder option override.")
    ap.add_argument("--simulator", choices=("demo", "terminals"), default="demo",
                    help="demo: pipelines.simulate.demo; terminals: pipelines.simulate.terminals (another generator).")
    ap.add_argument("--json", help="Also write every seed's metrics to this JSON file (after every seed).")
    ap.add_argument("--threads", type=int, default=2, help="Torch threads [2]; XGBoost follows OMP_NUM_THREADS.")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    overrides = parse_set(args.set)
    runs = {}
    for seed in (int(s) for s in args.seeds.split(",")):
        runs[seed] = m = run_seed(seed, args.accounts, args.days, overrides, args.simulator)
        print(f"seed {seed}: " + ", ".join(f"{a} - {b} {diff(pair_of(m, a, b))}" for a, b in PAIRS)
              + f" ({m['seconds']:.0f} s)", flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(runs, indent=1, default=str))
    print(f"\nsimulator {args.simulator}, {args.accounts} accounts, {args.days} days"
          + (f", options {overrides}" if overrides else "") + "\n")
    print(seed_table(runs) + "\n\n" + block_table(runs))


if __name__ == "__main__":
    main()
