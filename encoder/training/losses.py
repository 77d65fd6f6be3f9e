"""Losses that count valid steps only: masked MSE, masked Gaussian likelihood, masked cross-entropy, contrastive."""
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


def masked_gaussian_nll(mean: torch.Tensor, log_scale: torch.Tensor, target: torch.Tensor,
                        valid: torch.Tensor) -> torch.Tensor:
    """Per-sequence Gaussian negative log-likelihood over valid steps (constant dropped):
    (B, T, F) x3, (B, T) -> (B,); ``0.5 * ((target - mean) / scale) ** 2 + log scale``, averaged
    over channels and weighted by ``valid``."""
    if mean.shape[-1] == 0:
        return mean.new_zeros(mean.shape[0])
    z = (target - mean) * torch.exp(-log_scale)  # (B, T, F)
    nll = (0.5 * z * z + log_scale).mean(-1) * valid  # (B, T)
    return nll.sum(1) / valid.sum(1).clamp(min=1)


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


def reconstruction_errors(num_hat, cat_logits, num, cat, valid, categorical_weight: float = 1.0,
                          log_scale=None) -> torch.Tensor:
    """Per-sequence reconstruction error (B,): numeric MSE (Gaussian negative log-likelihood where a
    predicted ``log_scale`` is given) + weight x categorical cross-entropy."""
    numeric = masked_mse(num_hat, num, valid) if log_scale is None else masked_gaussian_nll(num_hat, log_scale, num, valid)
    return numeric + categorical_weight * masked_cross_entropy(cat_logits, cat, valid)


def hierarchical_contrastive(z1: torch.Tensor, z2: torch.Tensor, valid: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
    """TS2Vec's hierarchical contrastive loss on the step codes two views share: (B, C, K) x2 -> scalar.

    ``z1[i, c]`` and ``z2[i, c]`` code the same event of sequence ``i`` seen in two different
    contexts; ``valid`` (B, C) marks the shared steps (left-aligned). At every scale (the steps,
    then max-pooled pairs of steps, ... down to one) each code must pick its twin out of the
    other sequences' codes at that position (instance term, weight ``alpha``) and out of its own
    sequence's other steps (temporal term, ``1 - alpha``). Unshared steps take no part.
    """
    total, levels = z1.new_zeros(()), 0
    while True:
        total = total + alpha * _instance_contrast(z1, z2, valid)
        if z1.shape[1] > 1:
            total = total + (1 - alpha) * _temporal_contrast(z1, z2, valid)
        levels += 1
        if z1.shape[1] == 1:
            return total / levels
        halved = _halve_mask(valid)
        z1, z2, valid = _halve(z1, valid, halved), _halve(z2, valid, halved), halved


_MASKED = -1e9  # a logit no softmax picks; finite, so a row with nothing to compare stays finite


def _instance_contrast(z1, z2, valid) -> torch.Tensor:
    """Each step code against the codes of the other sequences at the same position."""
    B = z1.shape[0]  # batch
    if B == 1:
        return z1.new_zeros(())
    z = torch.cat([z1, z2], dim=0).transpose(0, 1)  # (C, 2B, K)
    m = torch.cat([valid, valid], dim=0).T  # (C, 2B)
    return _contrast(z, m, B)


def _temporal_contrast(z1, z2, valid) -> torch.Tensor:
    """Each step code against the codes of the same sequence at the other positions."""
    C = z1.shape[1]  # shared steps
    z = torch.cat([z1, z2], dim=1)  # (B, 2C, K)
    m = torch.cat([valid, valid], dim=1)  # (B, 2C)
    return _contrast(z, m, C)


def _contrast(z: torch.Tensor, m: torch.Tensor, n: int) -> torch.Tensor:
    """Cross-entropy of finding each row's twin (row ``r`` pairs with ``r +- n``) among the valid others.

    z : (G, 2n, K) codes in G independent groups; m : (G, 2n) valid codes."""
    sim = z @ z.transpose(1, 2)  # (G, 2n, 2n) dot products
    self_pair = torch.eye(2 * n, dtype=torch.bool, device=z.device)  # (2n, 2n)
    sim = sim.masked_fill(self_pair | ~m[:, None, :], _MASKED)
    logp = torch.log_softmax(sim, dim=-1)  # (G, 2n, 2n)
    rows = torch.arange(2 * n, device=z.device)
    twin = torch.cat([rows[n:], rows[:n]])  # (2n,)
    picked = logp[:, rows, twin].masked_fill(~m, 0.0)  # (G, 2n)
    return -picked.sum() / m.sum().clamp(min=1)


def _halve(z: torch.Tensor, valid: torch.Tensor, halved: torch.Tensor) -> torch.Tensor:
    """Max-pool pairs of neighbouring steps over valid ones: (B, C, K) -> (B, ceil(C/2), K), 0 where none
    is (``halved`` = ``_halve_mask(valid)``)."""
    B, C, K = z.shape  # batch, steps, code
    z = z.masked_fill(~valid[..., None], float("-inf"))
    if C % 2:
        z = torch.cat([z, z.new_full((B, 1, K), float("-inf"))], dim=1)  # (B, C + 1, K)
    pooled = z.view(B, -1, 2, K).amax(2)  # (B, ceil(C/2), K)
    return pooled.masked_fill(~halved[..., None], 0.0)


def _halve_mask(valid: torch.Tensor) -> torch.Tensor:
    """Validity after ``_halve``: a pair is valid when either step is. (B, C) -> (B, ceil(C/2))."""
    if valid.shape[1] % 2:
        valid = torch.cat([valid, valid.new_zeros(valid.shape[0], 1)], dim=1)  # (B, C + 1)
    return valid.view(valid.shape[0], -1, 2).any(2)  # (B, ceil(C/2))
