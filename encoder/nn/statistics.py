"""Untrained readings of a sequence: where its step codes peak (segment maxima) and plain summary
statistics of its numeric channels."""
from __future__ import annotations

import numpy as np
import torch

from encoder.sequences import exporting, valid_mask


def segment_max(codes: torch.Tensor, lengths: torch.Tensor, segments: int) -> torch.Tensor:
    """The maximum of each step-code channel over each of ``segments`` consecutive, equal parts of
    every sequence: (B, P, K) -> (B, segments * K), segment-major (the first part's K channels first).

    Step t of a sequence of L valid steps is in part floor(t S / L), so part j is steps
    [ceil(j L / S), ceil((j + 1) L / S)); a sequence shorter than ``segments`` gives an empty part
    its nearest step instead (steps repeat). Max pooling over the whole sequence says which shapes
    occur; these say in which part of it they occur. Padding is never read."""
    B, P, _ = codes.shape  # batch, steps, code channels
    L = lengths.to(codes.device)[:, None]  # (B, 1)
    t = torch.arange(P, device=codes.device)[None]  # (1, P)
    parts = []
    for j in range(segments):
        start = torch.minimum(torch.div(j * L + segments - 1, segments, rounding_mode="floor"), L - 1)  # (B, 1)
        end = torch.maximum(torch.div((j + 1) * L + segments - 1, segments, rounding_mode="floor"), start + 1)  # (B, 1)
        inside = (t >= start) & (t < end)  # (B, P)
        parts.append(codes.masked_fill(~inside[..., None], float("-inf")).amax(1))  # (B, K)
    return torch.cat(parts, dim=-1)  # (B, segments * K)


def position_share(maxima: torch.Tensor, segments: int) -> float:
    """How much a sequence's part says about its segment maxima: for each channel, the variance of
    its per-part means over the parts divided by its variance over every sequence and part,
    averaged over the channels that vary (0.0 if none does). ``maxima`` is ``segment_max``'s
    (N, segments * K). Near 0 when each shape is as likely in any part (a leaf outline traced from
    any point); large when shapes keep their place (the hours of a day, a gesture from its start)."""
    m = maxima.double().reshape(maxima.shape[0], segments, -1)  # (N, S, K): segment-major
    total = m.reshape(-1, m.shape[-1]).var(0, unbiased=False)  # (K,)
    between = m.mean(0).var(0, unbiased=False)  # (K,) spread of the parts' means
    varies = total > 1e-12
    return float((between[varies] / total[varies]).mean()) if bool(varies.any()) else 0.0


SUMMARY_STATS = ("mean", "std", "min", "max", "first", "last", "q25", "median", "q75", "mean_abs_step")


def summary_statistics(num: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Whole-sequence statistics of every numeric input channel over each sequence's valid events:
    (B, T, F) -> (B, len(SUMMARY_STATS) * F), statistic-major (all channels' means, then all stds...).

    Mean, standard deviation, minimum, maximum, first and latest value, the quartiles (linear
    interpolation, as numpy's default) and the mean absolute change between consecutive events, all
    in the scaled units the LSTM reads. Padding (trailing) is never read."""
    B, T, _ = num.shape  # batch, events, numeric channels
    lengths = lengths.to(num.device)
    valid = valid_mask(lengths, T)[..., None]  # (B, T, 1)
    n = lengths.to(num.dtype)[:, None]  # (B, 1)
    x = num.masked_fill(~valid, 0.0)  # (B, T, F)
    mean = x.sum(1) / n  # (B, F)
    std = (((x - mean[:, None]) ** 2 * valid).sum(1) / n).sqrt()  # (B, F)
    rows = torch.arange(B, device=num.device)
    ordered = _sorted_steps(num.masked_fill(~valid, float("inf")))  # (B, T, F), padding last
    quartiles = []
    for q in (0.25, 0.5, 0.75):
        pos = (n - 1) * q  # (B, 1)
        lo, hi = pos.floor().long(), pos.ceil().long()  # (B, 1)
        w = pos - lo.to(num.dtype)  # (B, 1)
        quartiles.append(ordered[rows, lo[:, 0]] * (1 - w) + ordered[rows, hi[:, 0]] * w)  # (B, F)
    pairs = valid_mask(lengths - 1, max(T - 1, 0))[..., None]  # (B, T - 1, 1): steps t with t + 1 valid
    steps = ((num[:, 1:] - num[:, :-1]).abs() * pairs).sum(1) / (n - 1).clamp(min=1)  # (B, F)
    return torch.cat([mean, std, ordered[:, 0], ordered[rows, lengths - 1], num[:, 0], num[rows, lengths - 1],
                      *quartiles, steps], dim=-1)  # (B, 10 F)


def _sorted_steps(x: torch.Tensor) -> torch.Tensor:
    """x (B, T, F) sorted along its steps. NumPy sorts many short rows several times as fast as
    torch on a CPU; a sort's values are the same either way, so a traced graph (ONNX), a tensor
    that needs gradients or one on another device keeps torch's."""
    if exporting() or x.requires_grad or x.device.type != "cpu":
        return x.sort(dim=1).values
    return torch.from_numpy(np.sort(x.numpy(), axis=1))  # (B, T, F)
