"""UCR/UEA benchmark: encoder with default options on TRAIN, XGBoost on TRAIN codes, accuracy on TEST.

Each set is turned into an event table (one row per series and time step, the class as label),
the encoder is trained on TRAIN with default options, codes are written for TRAIN and TEST, and
the default classifier is trained on TRAIN codes. The accuracy is printed beside the published
TS2Vec figure. Then ``compare`` runs on the same TRAIN/TEST so latent codes and raw-feature
baselines are shown side by side under one protocol.

``--probe`` adds a diagnosis: a logistic-regression probe on the codes and on the max-pooled LSTM
states before the projection to the code, showing where class information is lost.

Usage: python scripts/benchmark_ucr.py [GunPoint BasicMotions ...] [--no-compare] [--probe] [--seeds 0,1,2]

Any set aeon ships can be named (ItalyPowerDemand, ArrowHead, ...); published TS2Vec figures are
listed for GunPoint and BasicMotions only.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ucr_data import ucr_events  # noqa: E402

from encoder.sequences import valid_mask  # noqa: E402

PUBLISHED = {"GunPoint": 0.980, "BasicMotions": 0.975}  # TS2Vec (Yue et al., 2022), UCR/UEA tables


def pooled_states(enc, events) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Codes (n, K), max-pooled LSTM states before the projection (n, D*H) and labels, in entity order."""
    states = []

    def keep(module, inputs, output):
        outs, lengths = output[0], inputs[1]
        valid = valid_mask(lengths, outs[0].shape[1])[..., None]  # (B, T, 1)
        states.append(torch.cat([o.masked_fill(~valid, float("-inf")).amax(1) for o in outs], -1).numpy())

    hook = enc.model_.encoder.lstm.register_forward_hook(keep)
    try:
        z = enc.transform(events)
    finally:
        hook.remove()
    zcols = [c for c in z.columns if c.startswith("z_")]
    return z[zcols].to_numpy(), np.concatenate(states), z["label"].astype(str).to_numpy()


def probe(enc, train, test) -> None:
    """Logistic-regression test accuracy on the codes and on the states they are projected from."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    ztr, str_, ytr = pooled_states(enc, train)
    zte, ste, yte = pooled_states(enc, test)
    for name, a, b in (("codes", ztr, zte), ("pooled states", str_, ste)):
        lr = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(a, ytr)
        print(f"  probe: logistic regression on {name:13s} ({a.shape[1]:3d} dims): test accuracy {lr.score(b, yte):.3f}")


def accuracy(name: str, train, test, seed: int, show_probe: bool) -> float:
    """Train the default encoder and classifier with ``seed``; print and return the test accuracy."""
    from classifier import LatentClassifier
    from encoder import EncoderConfig, SequenceEncoder
    start = time.perf_counter()
    enc = SequenceEncoder("series", "t", "label", EncoderConfig(seed=seed)).fit(train)
    seconds = time.perf_counter() - start
    ztr, zte = enc.transform(train), enc.transform(test)
    zcols = [c for c in ztr.columns if c.startswith("z_")]
    clf = LatentClassifier(seed=seed).fit(ztr[zcols], ztr["label"])
    acc = float(np.mean(clf.predict(zte[zcols]) == zte["label"].to_numpy()))
    ref = (f"(TS2Vec published {PUBLISHED[name]:.3f}; target >= 0.95: {'OK' if acc >= 0.95 else 'BELOW'})"
           if name in PUBLISHED else "(no published figure listed here)")
    print(f"{name:14s} seed {seed}: test accuracy {acc:.3f}  {ref}  encoder trained in {seconds:.0f} s, "
          f"{enc.training_['epochs_run']} epochs", flush=True)
    if show_probe:
        probe(enc, train, test)
    return acc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("datasets", nargs="*", default=list(PUBLISHED))
    ap.add_argument("--no-compare", action="store_true", help="Skip the latent-vs-raw comparison.")
    ap.add_argument("--probe", action="store_true", help="Linear probes on codes and pre-projection states.")
    ap.add_argument("--seeds", default="0", help="Comma-separated seeds; several show the spread [0].")
    args = ap.parse_args()
    torch.set_num_threads(2)
    seeds = [int(s) for s in args.seeds.split(",")]
    for name in args.datasets:
        train, test = ucr_events(name, "train"), ucr_events(name, "test")
        accs = [accuracy(name, train, test, seed, args.probe) for seed in seeds]
        if len(seeds) > 1:
            print(f"{name:14s} over {len(seeds)} seeds: mean {np.mean(accs):.3f}, min {min(accs):.3f}, "
                  f"max {max(accs):.3f}; {sum(a >= 0.95 for a in accs)} of {len(seeds)} at >= 0.95", flush=True)
        if not args.no_compare:
            from pipelines.compare import run_compare
            from pipelines.report import render_table
            result = run_compare(train, "series", "t", "label", test, unit="entity", n_boot=200, seed=seeds[0])
            print(f"\n{name}: compare (seed {seeds[0]}; encoder and classifiers on TRAIN, validation carved from "
                  "TRAIN, TEST held out)")
            print(render_table(result.metrics) + "\n", flush=True)


if __name__ == "__main__":
    main()
