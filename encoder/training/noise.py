"""Training-time corruption for the denoising objective, as small pure functions.

Each takes the clean batch and a ``torch.Generator`` and returns a corrupted copy; padded steps
stay exactly as they were. They are called by the training step only, never when encoding.
"""
from __future__ import annotations

import torch

from encoder.preprocessing import PAD, UNKNOWN


def gaussian_noise(num: torch.Tensor, valid: torch.Tensor, std: float, gen: torch.Generator) -> torch.Tensor:
    """Add N(0, std^2) to numeric channels (B, T, F) on valid steps."""
    if std <= 0:
        return num
    noise = torch.randn(num.shape, generator=gen) * std
    return num + noise * valid[..., None]


def step_dropout(num: torch.Tensor, cat: torch.Tensor, valid: torch.Tensor, rate: float,
                 gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Blank whole steps: numerics to 0, categories to UNKNOWN (never padding)."""
    if rate <= 0:
        return num, cat
    drop = (torch.rand(valid.shape, generator=gen) < rate) & valid  # (B, T)
    num = num.masked_fill(drop[..., None], 0.0)
    cat = cat.masked_fill(drop[..., None] & (cat != PAD), UNKNOWN)
    return num, cat


def feature_dropout(num: torch.Tensor, valid: torch.Tensor, rate: float, gen: torch.Generator) -> torch.Tensor:
    """Zero single numeric values at random on valid steps."""
    if rate <= 0:
        return num
    drop = (torch.rand(num.shape, generator=gen) < rate) & valid[..., None]
    return num.masked_fill(drop, 0.0)


def unknown_replacement(cat: torch.Tensor, rate: float, gen: torch.Generator) -> torch.Tensor:
    """Replace categories by UNKNOWN at random; padding stays padding."""
    if rate <= 0 or cat.numel() == 0:
        return cat
    hit = (torch.rand(cat.shape, generator=gen) < rate) & (cat != PAD)
    return cat.masked_fill(hit, UNKNOWN)


def corrupt(num: torch.Tensor, cat: torch.Tensor, valid: torch.Tensor, config, gen: torch.Generator):
    """All corruptions of ``config`` (``NoiseOptions``) in a fixed order."""
    num = gaussian_noise(num, valid, config.noise_std, gen)
    num = feature_dropout(num, valid, config.feature_dropout, gen)
    num, cat = step_dropout(num, cat, valid, config.step_dropout, gen)
    cat = unknown_replacement(cat, config.unknown_rate, gen)
    return num, cat
