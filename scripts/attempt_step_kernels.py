"""An attempt at training that pays: random kernels reading the learned step codes, not the inputs.

If the random kernels' PPV pooling read the LSTM's step codes (B, T, K) instead of the scaled input
channels, the kernel block would be only as good as what the network learned, and the trained
encoder should beat its untrained twin (``SequenceEncoder.untrained_twin``) by what training adds.
Per set and seed this trains the default entity encoder, makes its twin, and fits MiniRocket's
kernels (``encoder.nn.kernels.RandomKernelFeatures``, 2,520 features, the same seed: the same channel
draws) on each network's own step codes of TRAIN; then the default classifier on TEST:

- ``full``: the code users get (learned blocks, summary statistics, kernels on the inputs);
- ``stepk``: kernels on the step codes alone;
- ``learned+stepk``: the code with its input kernels replaced by step-code kernels;
- ``full+stepk``: the code plus step-code kernels;

each for the trained encoder (``trained:``) and its twin (``twin:``). The sets are the tuning sets
of ``scripts/benchmark_ucr.py``. The result is in docs/benchmarks.md ("Attempts").

Usage: python scripts/attempt_step_kernels.py [SET,SET,... | all] [--seeds 0,1,2] [--json OUT.jsonl]
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from attempts import attempt_main  # noqa: E402

ROWS = ("full", "stepk", "learned+stepk", "full+stepk")


def step_codes(enc, events) -> tuple[torch.Tensor, torch.Tensor]:
    """The encoder network's step codes (B, P, K) of each entity's window, and their lengths (B,)."""
    from encoder.sequences import entity_end_rows, gather_windows
    data, arrays = enc.prepare(events)
    num, cat, lengths = gather_windows(arrays, entity_end_rows(data.starts), enc.max_len_)
    net = enc.model_.encoder.eval()
    with torch.inference_mode():
        return net.steps(num, cat, lengths).clone(), net.step_lengths(lengths).clone()


def step_kernels(enc, train, test, seed: int, features: int = 2520) -> tuple[np.ndarray, np.ndarray]:
    """Kernel features of TRAIN and TEST step codes, fitted on TRAIN's (channels from ``seed``)."""
    from encoder.nn.kernels import RandomKernelFeatures
    s_tr, l_tr = step_codes(enc, train)
    s_te, l_te = step_codes(enc, test)
    kernels = RandomKernelFeatures(s_tr.shape[-1], features, s_tr.shape[1]).fit(s_tr, l_tr, seed)
    with torch.inference_mode():
        return kernels(s_tr, l_tr).numpy(), kernels(s_te, l_te).numpy()


def run_once(name: str, train, test, seed: int) -> dict:
    from classifier import LatentClassifier
    from encoder import EncoderConfig, SequenceEncoder
    start = time.perf_counter()
    enc = SequenceEncoder("series", "t", "label", EncoderConfig.of(seed=seed)).fit(train)
    blocks = [b for b in enc.code_blocks() if b.width]
    kept = [c for b in blocks if b.name != "kernels" for c in b.columns]  # learned blocks, summary statistics
    input_kernels = [c for b in blocks if b.name == "kernels" for c in b.columns]
    accuracy = {}
    for which, e in (("trained", enc), ("twin", enc.untrained_twin())):
        ztr, zte = e.transform(train), e.transform(test)
        ktr, kte = step_kernels(e, train, test, seed)
        y_tr, y_te = ztr["label"].to_numpy(), zte["label"].to_numpy()

        def score(tr: np.ndarray, te: np.ndarray) -> float:
            names = [f"c{i}" for i in range(tr.shape[1])]
            clf = LatentClassifier(seed=seed).fit(pd.DataFrame(tr, columns=names), y_tr)
            return float(np.mean(clf.predict(pd.DataFrame(te, columns=names)) == y_te))

        own = {"full": (ztr[kept + input_kernels].to_numpy(), zte[kept + input_kernels].to_numpy()),
               "stepk": (ktr, kte),
               "learned+stepk": (np.hstack([ztr[kept].to_numpy(), ktr]), np.hstack([zte[kept].to_numpy(), kte])),
               "full+stepk": (np.hstack([ztr[kept + input_kernels].to_numpy(), ktr]),
                              np.hstack([zte[kept + input_kernels].to_numpy(), kte]))}
        accuracy |= {f"{which}:{row}": score(*own[row]) for row in ROWS}
    return {"set": name, "seed": seed, "acc": accuracy, "s": time.perf_counter() - start}


def summary(records: list[dict]) -> str:
    """Per set: mean accuracy of each row, trained and twin, and the paired lift of ``stepk``."""
    sets = list(dict.fromkeys(r["set"] for r in records))
    head = "| data set | seeds | " + " | ".join(f"{row}, trained | {row}, twin" for row in ROWS) + " | stepk lift (paired) |"
    lines = [head, "|" + "---|" * (3 + 2 * len(ROWS))]
    for name in sets:
        runs = [r["acc"] for r in records if r["set"] == name]
        cells = [f"{np.mean([a[f'{w}:{row}'] for a in runs]):.3f}" for row in ROWS for w in ("trained", "twin")]
        lift = np.array([a["trained:stepk"] - a["twin:stepk"] for a in runs])
        lines.append(f"| {name} | {len(runs)} | " + " | ".join(cells) +
                     f" | {lift.mean():+.3f} ({int((lift > 0).sum())}/{len(lift)} > 0) |")
    means = [f"{np.mean([r['acc'][f'{w}:{row}'] for r in records]):.3f}" for row in ROWS for w in ("trained", "twin")]
    lines.append("| mean over runs | | " + " | ".join(f"**{m}**" for m in means) + " | |")
    return "\n".join(lines)


if __name__ == "__main__":
    attempt_main(__doc__.splitlines()[0], run_once, summary, seeds="0,1,2")
