"""An attempt at training that pays: a classifier that hears the learned blocks beside the kernels.

The full code is 2,520 random-kernel columns and 40-180 others; one classifier over all of them
scores about as its kernel block alone does (``docs/benchmarks.md``), so whatever the trained
blocks know is drowned. Here the default classifier is fitted twice, on the kernel block alone and
on every other block (the learned blocks and the summary statistics), and the two models' class
probabilities are blended (the mean of their logarithms, equal weights, nothing chosen on the
test rows). Per set and seed this trains the default entity encoder, makes its untrained twin, and
scores on TEST, for each of them:

- ``full``: one classifier over the whole code (what users get today);
- ``rest``: the classifier over every block but the kernels;
- ``blend``: the kernel model and the ``rest`` model blended.

``blend, trained - twin`` is the training lift under the blended classifier, the control the same
as everywhere: the twin differs from the encoder only in the network's weights. The sets are the
tuning sets of ``scripts/benchmark_ucr.py``. The result is in docs/benchmarks.md ("Attempts").

Usage: python scripts/attempt_block_blend.py [SET,SET,... | all] [--seeds 0,1,2,3,4] [--json OUT.jsonl]
       python scripts/attempt_block_blend.py --summary --json OUT.jsonl
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from attempts import attempt_main  # noqa: E402
from benchmark_ucr import differences  # noqa: E402

ROWS = ("full", "rest", "blend")


def blended(probas: list[np.ndarray], classes) -> np.ndarray:
    """The class each row's blended probabilities pick: the mean over models of their logarithms,
    equal weights. ``probas``: each model's (n, classes) probabilities, columns in ``classes`` order."""
    log_p = np.mean([np.log(np.clip(p, 1e-12, 1)) for p in probas], axis=0)  # (n, classes)
    return np.asarray(classes)[log_p.argmax(1)]


def run_once(name: str, train, test, seed: int) -> dict:
    from classifier import LatentClassifier
    from encoder import EncoderConfig, SequenceEncoder
    start = time.perf_counter()
    enc = SequenceEncoder("series", "t", "label", EncoderConfig.of(seed=seed)).fit(train)
    blocks = [b for b in enc.code_blocks() if b.width]
    every = [c for b in blocks for c in b.columns]  # the benchmark's column order, so ``full`` is its row
    kernels = [c for b in blocks if b.name == "kernels" for c in b.columns]
    rest = [c for b in blocks if b.name != "kernels" for c in b.columns]  # in ``every``'s order
    accuracy = {}
    for which, e in (("trained", enc), ("twin", enc.untrained_twin())):
        ztr, zte = e.transform(train), e.transform(test)
        y_tr, y_te = ztr["label"].to_numpy(), zte["label"].to_numpy()
        full, kern, other = (LatentClassifier(seed=seed).fit(ztr[cols], y_tr) for cols in (every, kernels, rest))
        assert list(kern.classes_) == list(other.classes_)
        blend = blended([kern.predict_proba(zte[kernels]), other.predict_proba(zte[rest])], kern.classes_)
        accuracy |= {f"{which}:full": float(np.mean(full.predict(zte[every]) == y_te)),
                     f"{which}:rest": float(np.mean(other.predict(zte[rest]) == y_te)),
                     f"{which}:blend": float(np.mean(blend == y_te))}
    return {"set": name, "seed": seed, "acc": accuracy, "s": time.perf_counter() - start}


def summary(records: list[dict]) -> str:
    """Per set: mean accuracy of each row, trained and twin, and the paired lifts of the blend."""
    sets = list(dict.fromkeys(r["set"] for r in records))
    head = ("| data set | seeds | " + " | ".join(f"{row}, trained | {row}, twin" for row in ROWS)
            + " | blend - full, trained (paired) | blend: trained - twin (paired) | full: trained - twin (paired) |")
    lines = [head, "|" + "---|" * (5 + 2 * len(ROWS))]

    per_set = []
    for name in sets:
        runs = [r["acc"] for r in records if r["set"] == name]
        a = {k: np.array([run[k] for run in runs]) for k in runs[0]}  # (seeds,) per row
        per_set.append({k: v.mean() for k, v in a.items()})
        cells = [f"{a[f'{w}:{row}'].mean():.3f}" for row in ROWS for w in ("trained", "twin")]
        lifts = [a["trained:blend"] - a["trained:full"], a["trained:blend"] - a["twin:blend"],
                 a["trained:full"] - a["twin:full"]]
        lines.append(f"| {name} | {len(runs)} | " + " | ".join(cells + [differences(d) for d in lifts]) + " |")
    m = {k: np.mean([s[k] for s in per_set]) for k in per_set[0]}  # means over sets
    means = [f"**{m[f'{w}:{row}']:.3f}**" for row in ROWS for w in ("trained", "twin")]
    lifts = [m["trained:blend"] - m["trained:full"], m["trained:blend"] - m["twin:blend"],
             m["trained:full"] - m["twin:full"]]
    lines.append("| mean over sets | | " + " | ".join(means + [f"{d:+.3f}" for d in lifts]) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    attempt_main(__doc__.splitlines()[0], run_once, summary, seeds="0,1,2,3,4")
