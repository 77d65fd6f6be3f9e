"""Reconstruction losses that count valid steps only: masked MSE and masked cross-entropy."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def masked_mse(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per-sequence mean squared error over valid steps: (B, T, F) x2, (B, T) -> (B,).

    ``valid`` is a 0/1 mask or per-step weights (0 on padding); the mean is weighted by it."""
    if pred.shape[-1] == 0:
        return pred.new_zeros(pred.shape[0])
    sq = ((pred - target) ** 2).mean(-1) * valid  # (B, T)
    return sq.sum(1) / valid.sum(1).clamp(min=1)


def masked_cross_entropy(logits: list[torch.Tensor], cat: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per-sequence cross-entropy over valid steps (mask or weights), averaged over columns -> (B,).

    Each column's cross-entropy is divided by log(vocabulary size), the loss of a uniform guess,
    so a column with thousands of values does not drown the others (or the numeric channels).
    """
    if not logits:
        return cat.new_zeros(cat.shape[0], dtype=torch.float32)
    total = 0.0
    for j, lg in enumerate(logits):
        B, T, V = lg.shape  # batch, steps, vocabulary
        ce = F.cross_entropy(lg.reshape(B * T, V), cat[..., j].reshape(B * T), reduction="none")  # (B*T,)
        total = total + ce.view(B, T) * valid / math.log(max(V - 1, 2))  # (B, T); padding is no class
    return total.sum(1) / (valid.sum(1).clamp(min=1) * len(logits))


def reconstruction_errors(num_hat, cat_logits, num, cat, valid, categorical_weight: float = 1.0) -> torch.Tensor:
    """Per-sequence reconstruction error (B,): numeric MSE + weight x categorical cross-entropy."""
    return masked_mse(num_hat, num, valid) + categorical_weight * masked_cross_entropy(cat_logits, cat, valid)


def info_nce(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """Symmetric InfoNCE between codes of two corrupted views of the same batch: (B, K) x2 -> scalar.

    Each sequence's two views should be closer to each other than to any other sequence's view.
    """
    a, b = F.normalize(z1, dim=-1), F.normalize(z2, dim=-1)  # (B, K)
    logits = a @ b.T / temperature  # (B, B)
    target = torch.arange(len(a), device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
