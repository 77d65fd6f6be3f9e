"""UCR/UEA benchmark: encoder with default options on TRAIN, XGBoost on TRAIN codes, accuracy on TEST.

Each set is turned into an event table (one row per series and time step, the class as label), the
encoder is trained on TRAIN with default options, codes are written for TRAIN and TEST, and the
default classifier is trained on TRAIN codes: what a new user gets from ``encoder train``,
``encoder encode`` and ``classifier train``. For every set and seed it times the whole run (train,
encode, classify; target under 3 minutes on 2 cores) and prints one table: mean accuracy over the
seeds with min-max, training seconds, and the published TS2Vec and T-Loss accuracies.

Control: for each set, a *random-weights encoder* (the same architecture, with the segment maxima
its trained twin kept or dropped and its random-kernel features, and fitted preprocessing, weights left at their seeded
initialisation, no training) goes through the same classifier. A
code no better than random weights is no code: the gap between the two rows is what training adds.

Usage: python scripts/benchmark_ucr.py [SET ...] [--seeds 0,1,2,3,4] [--no-control] [--probe]
       [--compare] [--out TABLE.md] [--set KEY=VALUE ...]

``--set`` overrides an encoder option for every set and seed (e.g. ``--set contrastive_weight=0.3``),
to measure one idea against the defaults on every set; the control is untrained and unaffected.

Sets default to every classification set aeon ships (``ucr_data.BUNDLED``).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from options import parse_set  # noqa: E402
from ucr_data import BUNDLED, ucr_events  # noqa: E402

from encoder.sequences import valid_mask  # noqa: E402

# Test accuracy published in the TS2Vec paper's full UCR/UEA tables (Yue et al., AAAI 2022,
# appendix), which report TS2Vec and T-Loss (Franceschi et al., 2019) under one protocol
# (representation on TRAIN, RBF-SVM on TRAIN codes, TEST accuracy). Transcribed by hand.
PUBLISHED = {  # name: (TS2Vec, T-Loss)
    "GunPoint": (0.980, 0.980), "BasicMotions": (0.975, 1.000), "ArrowHead": (0.857, 0.766),
    "ItalyPowerDemand": (0.961, 0.954), "JapaneseVowels": (0.984, 0.989), "OSULeaf": (0.851, 0.760),
    "PickupGestureWiimoteZ": (0.820, 0.740), "ACSF1": (0.910, 0.900),
}
TARGETS = {"GunPoint": 0.98, "BasicMotions": 0.99, "ArrowHead": 0.85, "ItalyPowerDemand": 0.955}  # issue 11
TIME_LIMIT_S = 180


def random_weights(enc, seed: int):
    """``enc`` with its network replaced by a freshly initialised one (seeded): the control."""
    from encoder.model import LSTMAutoencoder
    torch.manual_seed(seed)
    enc.model_ = LSTMAutoencoder(enc.model_config_).eval()
    enc.encoder_id_ = None
    return enc


def run_once(name: str, train, test, seed: int, control: bool = False, overrides: dict | None = None,
             segments: int | None = None, kernel_features: int | None = None) -> dict:
    """Train (or, for the control, only initialise) the default encoder with ``seed``, code TRAIN and
    TEST, fit the default classifier on TRAIN codes; accuracy on TEST and the seconds of each stage.
    The control takes ``segments`` and ``kernel_features`` as its trained twin resolved them: the
    same code layout."""
    from classifier import LatentClassifier
    from encoder import EncoderConfig, SequenceEncoder
    start = time.perf_counter()
    cfg = (EncoderConfig(seed=seed, epochs=1, segments=segments, kernel_features=kernel_features) if control
           else EncoderConfig(seed=seed).replace(**(overrides or {})))
    enc = SequenceEncoder("series", "t", "label", cfg).fit(train)
    if control:
        enc = random_weights(enc, seed)
    trained = time.perf_counter()
    ztr, zte = enc.transform(train), enc.transform(test)
    encoded = time.perf_counter()
    zcols = [c for c in ztr.columns if c.startswith("z_")]
    clf = LatentClassifier(seed=seed).fit(ztr[zcols], ztr["label"])
    acc = float(np.mean(clf.predict(zte[zcols]) == zte["label"].to_numpy()))
    done = time.perf_counter()
    return {"accuracy": acc, "train_s": trained - start, "encode_s": encoded - trained,
            "classify_s": done - encoded, "total_s": done - start, "epochs": enc.training_["epochs_run"],
            "max_len": enc.max_len_, "patch": enc.config_.patch, "segments": enc.config_.segments,
            "segments_rule": enc.training_["segments"], "kernel_features": enc.config_.kernel_features,
            "code_width": len(zcols), "encoder": enc}


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


def spread(values) -> str:
    """``mean [min, max]`` of accuracies, or the single value."""
    v = np.asarray(values)
    return f"{v.mean():.3f}" if len(v) == 1 else f"{v.mean():.3f} [{v.min():.3f}, {v.max():.3f}]"


def table(results: dict, n_seeds: int) -> str:
    """The markdown table: one row per set (seqae and, if run, the random-weights control)."""
    head = (f"| data set | seqae accuracy, mean [min, max] over {n_seeds} seeds | random-weights control | "
            "TS2Vec | T-Loss | target | encoder training s | whole run s (max) | events per step |")
    lines = [head, "|" + "---|" * 9]
    for name, r in results.items():
        acc = [x["accuracy"] for x in r["seqae"]]
        ctrl = spread([x["accuracy"] for x in r["control"]]) if r["control"] else "not run"
        ts2vec, tloss = (f"{v:.3f}" for v in PUBLISHED[name]) if name in PUBLISHED else ("not listed",) * 2
        target = TARGETS.get(name)
        verdict = "" if target is None else f"{target:.3f} {'OK' if np.mean(acc) >= target else 'BELOW'}"
        train_s = [x["train_s"] for x in r["seqae"]]
        total = max(x["total_s"] for x in r["seqae"])
        lines.append(f"| {name} | {spread(acc)} | {ctrl} | {ts2vec} | {tloss} | {verdict} | "
                     f"{min(train_s):.0f}-{max(train_s):.0f} | {total:.0f}{'' if total <= TIME_LIMIT_S else ' OVER'} | "
                     f"{r['seqae'][0]['patch']} of {r['seqae'][0]['max_len']} |")
    return "\n".join(lines)


def benchmark(names, seeds, control: bool = True, show_probe: bool = False, compare: bool = False,
              overrides: dict | None = None) -> dict:
    """Run every set and seed; returns ``{set: {"seqae": [run, ...], "control": [run, ...]}}``."""
    results = {}
    for name in names:
        train, test = ucr_events(name, "train"), ucr_events(name, "test")
        results[name] = {"seqae": [], "control": []}
        for seed in seeds:
            r = run_once(name, train, test, seed, overrides=overrides)
            results[name]["seqae"].append(r)
            rule = r["segments_rule"]
            kept = f", segments {r['segments']}" + (f" (share {rule['share']:.2f})" if rule else "")
            print(f"{name:22s} seed {seed}: test accuracy {r['accuracy']:.3f}  trained {r['train_s']:.0f} s "
                  f"({r['epochs']} epochs), whole run {r['total_s']:.0f} s{kept}", flush=True)
            if show_probe:
                probe(r["encoder"], train, test)
            r.pop("encoder")
            if control:
                c = run_once(name, train, test, seed, control=True, segments=r["segments"],
                             kernel_features=r["kernel_features"])
                c.pop("encoder")
                results[name]["control"].append(c)
                print(f"{name:22s} seed {seed}: random-weights control {c['accuracy']:.3f}", flush=True)
        if compare:
            from pipelines.compare import run_compare
            from pipelines.report import render_table
            result = run_compare(train, "series", "t", "label", test, unit="entity", n_boot=200, seed=seeds[0])
            print(f"\n{name}: compare (seed {seeds[0]}; encoder and classifiers on TRAIN, TEST held out)")
            print(render_table(result.metrics) + "\n", flush=True)
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("datasets", nargs="*", default=list(BUNDLED))
    ap.add_argument("--seeds", default="0,1,2,3,4", help="Comma-separated seeds [0,1,2,3,4].")
    ap.add_argument("--no-control", action="store_true", help="Skip the random-weights control.")
    ap.add_argument("--probe", action="store_true", help="Linear probes on codes and pre-projection states.")
    ap.add_argument("--compare", action="store_true", help="Also run pipeline compare (latent vs raw baselines).")
    ap.add_argument("--out", help="Also write the table to this markdown file.")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="Encoder option override.")
    args = ap.parse_args()
    torch.set_num_threads(2)
    seeds = [int(s) for s in args.seeds.split(",")]
    overrides = parse_set(args.set)
    results = benchmark(args.datasets, seeds, not args.no_control, args.probe, args.compare, overrides)
    text = table(results, len(seeds))
    print("\n" + text + (f"\nencoder options: {overrides}" if overrides else ""))
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
