"""aeon's bundled UCR/UEA series as seqae event tables: one row per series and time step."""
from __future__ import annotations

import numpy as np
import pandas as pd


def ucr_events(name: str, split: str) -> pd.DataFrame:
    """``name`` in {"GunPoint", "BasicMotions", ...}; columns series, t, label, x0..x{C-1}."""
    from aeon.datasets import load_classification
    X, y = load_classification(name, split=split)
    n, c, t = X.shape  # series, channels, steps
    frame = pd.DataFrame(X.transpose(0, 2, 1).reshape(n * t, c), columns=[f"x{i}" for i in range(c)])  # (n*t, c)
    frame.insert(0, "label", np.repeat(np.asarray(y).astype(str), t))
    frame.insert(0, "t", np.tile(np.arange(t), n))
    frame.insert(0, "series", np.repeat(np.arange(n), t))
    return frame
