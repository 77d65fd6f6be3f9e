"""aeon's bundled UCR/UEA series as seqae event tables: one row per series and time step."""
from __future__ import annotations

import numpy as np
import pandas as pd

# The classification sets aeon ships inside its wheel (no download): UCR univariate and UEA
# multivariate, equal and unequal length. UnitTest (a 20-series cut of Chinatown for aeon's own
# tests) is left out of benchmarks; it serves seqae's tests as a tiny real set.
BUNDLED = ("GunPoint", "BasicMotions", "ArrowHead", "ItalyPowerDemand", "JapaneseVowels", "OSULeaf",
           "PickupGestureWiimoteZ", "ACSF1")
# Every default was chosen on BUNDLED's test accuracy (docs/benchmarks.md): those rows are tuning
# data. These ship with aeon too and no default was chosen on them; they are run once at frozen
# defaults as held-out evidence. Covid3Month_disc: 201 series of 84 days of Covid deaths per
# country, the next month's rate cut into 3 classes; UnitTest: 42 series of Chinatown (24 hours of
# pedestrian counts, weekday or weekend).
HELD_OUT = ("Covid3Month_disc", "UnitTest")


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
