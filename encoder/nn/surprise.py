"""Surprise: how far each event departs from what the next-event head expected from its past, and
the recent trend of that surprise."""
from __future__ import annotations

import math

import torch


def surprise(next_num: torch.Tensor, next_cat: list[torch.Tensor], num: torch.Tensor, cat: torch.Tensor) -> torch.Tensor:
    """How events depart from what their past predicted: (..., F_num + F_cat) for inputs (..., F).

    Numeric channels: the signed error ``value - predicted`` (an amount above expectation is
    positive), in predicted scales when ``next_num`` holds a mean and a log-scale per channel
    (``surprise_scale``: ``(value - mean) / scale``); categorical columns: ``-log p(actual value)``
    divided by log(vocabulary size), 0 for a value the past made certain, about 1 for a uniform guess."""
    mean, log_scale = next_numeric_parts(next_num, num.shape[-1])  # (..., F_num), and None or (..., F_num)
    error = num - mean  # (..., F_num)
    parts = [error if log_scale is None else error * torch.exp(-log_scale)]  # (..., F_num)
    for j, logits in enumerate(next_cat):
        logp = torch.log_softmax(logits, dim=-1)  # (..., V_j)
        parts.append(-logp.gather(-1, cat[..., j:j + 1]) / math.log(max(logits.shape[-1] - 1, 2)))  # (..., 1)
    return torch.cat(parts, dim=-1)  # (..., F_num + F_cat)


LOG_SCALE_RANGE = (-3.0, 3.0)  # a predicted scale between 0.05 and 20 scaled units: no division by ~0


def next_numeric_parts(next_num: torch.Tensor, n_numeric: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The numeric next-event head's output as the predicted mean (..., F) and, for a head with a
    scale (``surprise_scale``: (..., 2F), the means then the log-scales), the clamped log-scale
    (..., F) of each channel; None without one."""
    if next_num.shape[-1] != 2 * n_numeric or n_numeric == 0:
        return next_num, None
    mean, log_scale = next_num.chunk(2, dim=-1)  # (..., F) each
    return mean, log_scale.clamp(*LOG_SCALE_RANGE)


TREND_CARRY = ("trend_sum", "trend_sq", "trend_w")  # the step carry's decayed sums (``SequenceEncoderNet.step``)
TREND_BLOCK = 128  # steps per block of ``running_trend``: a (block, block) weight matrix, never a wider one


def trend_from_sums(total: torch.Tensor, squares: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """The recent mean and spread of the surprise from its decayed sums (..., S), the decayed sums of
    its square (..., S) and of the weights (..., 1): (..., 2S), mean then variance. The variance, not
    its square root: near 0 a root would magnify float rounding (float32 batch codes against float64
    online ones) into differences a tree split can see, and trees read any monotone transform alike."""
    mean = total / weight  # (..., S)
    return torch.cat([mean, (squares / weight - mean * mean).clamp_min(0)], dim=-1)  # (..., 2S)


def running_trend(s: torch.Tensor, beta: float) -> torch.Tensor:
    """Exponentially weighted mean and spread of the surprise over every event and the earlier ones:
    (B, T, S) -> (B, T, 2S). Event i counts ``beta ** (t - i)`` at event t, normalised by the sum of
    those weights (pandas' ``ewm(adjust=True)``), so an entity's first event has its own surprise as
    the mean and 0 variance. Valid steps never read padding (which trails). Computed in blocks of
    ``TREND_BLOCK`` steps, each a (block, block) matrix product plus the decayed sums carried in."""
    B, T, S = s.shape  # batch, events, surprise channels
    n = min(T, TREND_BLOCK)
    steps = torch.arange(n, device=s.device, dtype=s.dtype)
    lag = steps[:, None] - steps[None, :]  # (n, n): t - i
    kernel = torch.where(lag >= 0, beta ** lag.clamp_min(0), torch.zeros_like(lag))  # (n, n), lower-triangular
    carried = beta ** (steps + 1)  # (n,): weight of the sums before the block at its step t
    x = torch.cat([s, s * s, torch.ones_like(s[..., :1])], dim=-1)  # (B, T, 2S + 1)
    sums, prev = [], None
    for a in range(0, T, n):
        block = x[:, a:a + n]  # (B, m, 2S + 1)
        m = block.shape[1]
        y = torch.einsum("ti,bic->btc", kernel[:m, :m], block)  # (B, m, 2S + 1)
        if prev is not None:
            y = y + carried[:m, None] * prev[:, None, :]  # (B, m, 2S + 1)
        sums.append(y)
        prev = y[:, -1]  # (B, 2S + 1)
    y = torch.cat(sums, dim=1)  # (B, T, 2S + 1)
    return trend_from_sums(y[..., :S], y[..., S:2 * S], y[..., 2 * S:])  # (B, T, 2S)


def latest_trend(s: torch.Tensor, lengths: torch.Tensor, beta: float) -> torch.Tensor:
    """``running_trend`` at each sequence's latest event only: (B, T, S) -> (B, 2S), one weighted sum
    over the steps (no loop, so it exports to ONNX with any T)."""
    B, T, S = s.shape  # batch, events, surprise channels
    lag = (lengths.to(s.device)[:, None] - 1) - torch.arange(T, device=s.device)[None, :]  # (B, T)
    w = torch.where(lag >= 0, beta ** lag.clamp_min(0).to(s.dtype), torch.zeros((), dtype=s.dtype))  # (B, T)
    s = s.masked_fill(lag[..., None] < 0, 0.0)  # (B, T, S): padding may hold anything
    total, squares = (w[..., None] * s).sum(1), (w[..., None] * s * s).sum(1)  # (B, S)
    return trend_from_sums(total, squares, w.sum(1, keepdim=True))  # (B, 2S)
