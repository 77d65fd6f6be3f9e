"""Whole-run seconds of the UCR protocol on sets larger than any aeon ships, against the 3-minute target.

The bundled sets are small (at most 270 training series); a held-out UCR set may have thousands of
series, hundreds of steps or tens of classes. This script builds seeded synthetic sets of those
shapes (each class a sine of its own frequency plus noise, TEST half the size of TRAIN), runs what
``benchmark_ucr.py`` runs (default encoder on TRAIN, codes for TRAIN and TEST, default classifier on
TRAIN codes) and prints, per shape, the seconds of each stage and the whole run over the target
(``TIME_LIMIT_S``): a ratio above 1 misses it. Accuracy is printed to show the run is real, not as
a result (with tens of classes the frequencies crowd together and it falls well below 1).

Usage: python scripts/bench_ucr_scale.py [--shapes 3600x500x2,4000x100x8,600x512x60,390x176x37] [--seed 0]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmark_ucr import TIME_LIMIT_S, run_once  # noqa: E402

# FordA-like (many long series), ElectricDevices/Crop-like (many short series, several classes),
# ShapesAll-like (few series a class, many classes), Adiac-like (37 classes, about 10 rows each)
DEFAULT_SHAPES = "3600x500x2,4000x100x8,600x512x60,390x176x37"


def synthetic(n: int, length: int, classes: int, seed: int) -> pd.DataFrame:
    """``n`` series of ``length`` steps, classes in turn (every class has n // classes or more rows)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    t = np.linspace(0, 6, length)
    x = np.sin(t[None, :] * (1 + 2 * y[:, None] / classes)) + rng.normal(0, 0.3, (n, length))  # (n, length)
    return pd.DataFrame({"series": np.repeat(np.arange(n), length), "t": np.tile(np.arange(length), n),
                         "label": np.repeat(y.astype(str), length), "x0": x.ravel()})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shapes", default=DEFAULT_SHAPES, help="Comma-separated NxLENGTHxCLASSES (TRAIN series).")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(2)
    print(f"| TRAIN series x steps x classes | accuracy | epochs | sequences an epoch | code columns | train s | "
          f"encode s | classify s | whole run s | over {TIME_LIMIT_S} s |")
    print("|" + "---|" * 10)
    for shape in args.shapes.split(","):
        n, length, classes = (int(v) for v in shape.split("x"))
        train = synthetic(n, length, classes, args.seed)
        test = synthetic(max(classes, n // 2), length, classes, args.seed + 1)
        r = run_once(shape, train, test, args.seed)
        print(f"| {n} x {length} x {classes} | {r['accuracy']:.3f} | {r['epochs']} | "
              f"{r['encoder'].config_.training.max_sequences_per_epoch} | {r['code_width']} (segments {r['segments']}) | "
              f"{r['train_s']:.0f} | {r['encode_s']:.0f} | "
              f"{r['classify_s']:.0f} | {r['total_s']:.0f} | {r['total_s'] / TIME_LIMIT_S:.2f} |", flush=True)


if __name__ == "__main__":
    main()
