"""The training history as a picture: losses per epoch, saved beside the encoder."""
from __future__ import annotations

from pathlib import Path

import pandas as pd


def plot_history(history: pd.DataFrame, path: str | Path) -> None:
    """Training and validation loss per epoch, as a PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if len(history):
        ax.plot(history["epoch"], history["train_loss"], label="train (corrupted input)")
        ax.plot(history["epoch"], history["val_loss"], label="validation (clean input)")
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("reconstruction loss")
    if len(history):
        ax.legend(loc="upper left")
    else:  # an untrained control: nothing to draw
        ax.text(0.5, 0.5, "untrained (0 epochs)", ha="center", va="center", transform=ax.transAxes)
    if len(history) and "train_contrastive" in history and history["train_contrastive"].gt(0).any():
        right = ax.twinx()
        right.plot(history["epoch"], history["train_contrastive"], color="tab:green", linestyle="--",
                   label="contrastive (train)")
        right.set_ylabel("contrastive loss")
        right.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
