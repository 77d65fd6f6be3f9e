"""Shared fixtures: a seeded tiny event table and a small, fast encoder config."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from encoder import EncoderConfig

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def seed():
    np.random.seed(0)
    torch.manual_seed(0)
    return 0


def make_events(n_entities: int = 12, seed: int = 0, min_len: int = 3, max_len: int = 14) -> pd.DataFrame:
    """Entities of two kinds (label 0/1) with a numeric signal, a missing-prone numeric and a category."""
    rng = np.random.default_rng(seed)
    rows = []
    for e in range(n_entities):
        kind = e % 2
        n = int(rng.integers(min_len, max_len + 1))
        t = np.cumsum(rng.exponential(1.0 + kind, n))
        base = np.sin(np.arange(n) / (2 + 2 * kind)) + rng.normal(0, 0.1, n)
        amount = np.abs(rng.normal(10 + 40 * kind, 5, n))
        amount[rng.random(n) < 0.1] = np.nan
        channel = rng.choice(["web", "pos", "atm"] if kind else ["web", "pos"], n)
        for i in range(n):
            rows.append({"account": f"acc{e:02d}", "ts": float(t[i]), "signal": base[i],
                         "amount": amount[i], "channel": channel[i], "label": kind})
    df = pd.DataFrame(rows)
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)  # file order is not time order


@pytest.fixture
def events() -> pd.DataFrame:
    return make_events()


@pytest.fixture
def small_config() -> EncoderConfig:
    return EncoderConfig.of(hidden_size=8, latent_dim=4, epochs=3, batch_size=4, min_batches_per_epoch=2,
                            patience=50, seed=0)
