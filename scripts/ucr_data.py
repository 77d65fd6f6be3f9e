"""aeon's bundled UCR/UEA series as seqae event tables: one row per series and time step."""
from __future__ import annotations

import numpy as np
import pandas as pd

# The classification sets aeon ships inside its wheel (no download): UCR univariate and UEA
# multivariate, equal and unequal length. UnitTest (a 20-series cut of Chinatown for aeon's own
# tests) is left out of benchmarks; it serves seqae's tests as a tiny real set.
BUNDLED = ("GunPoint", "BasicMotions", "ArrowHead", "ItalyPowerDemand", "JapaneseVowels", "OSULeaf",
           "PickupGestureWiimoteZ", "ACSF1")


def ucr_events(name: str, split: str) -> pd.DataFrame:
    """``name`` in {"GunPoint", "BasicMotions", ...}; columns series, t, label, x0..x{C-1}.

    Unequal-length sets (JapaneseVowels, PickupGestureWiimoteZ) give each series its own number
    of rows; aeon's NaN padding, if any, is dropped."""
    from aeon.datasets import load_classification
    X, y = load_classification(name, split=split)
    labels = np.asarray(y).astype(str)
    frames = []
    for i, series in enumerate(X):  # (c, t_i) each
        values = np.asarray(series, dtype=np.float64).T  # (t_i, c)
        values = values[~np.isnan(values).all(1)]
        frame = pd.DataFrame(values, columns=[f"x{j}" for j in range(values.shape[1])])
        frame.insert(0, "label", labels[i])
        frame.insert(0, "t", np.arange(len(values)))
        frame.insert(0, "series", i)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
