"""Random-kernel features: MiniRocket's dilated convolutions and their proportions of positive values.

Dempster, Schmidt and Webb, "MiniRocket: a very fast (almost) deterministic transform for time
series classification" (KDD 2021). Each of 84 kernels of 9 taps (weight -1, and 2 at three of the
taps: every choice of three of nine) is applied at a set of dilations spread exponentially up to
the length of a window; each kernel-dilation pair sums its convolution over a random subset of the
input channels, and a feature is the proportion of a sequence's steps at which that sum exceeds a
bias, the biases being quantiles of the sums on training sequences. The weights sum to zero, so a
feature ignores an offset of its channels; the biases take care of their scale.

Here they read the encoder's scaled numeric channels over each sequence's valid events only (padding
is never counted), so sequences of any length in one batch get the features they would get alone:
aeon's ``MiniRocket`` needs equal-length series, and these run inside the encoder's forward pass, and
its ONNX export, beside the learned code. Nothing here is trained: the channel subsets are drawn from
the encoder's seed and the biases fitted on its training sequences (``fit``), then both are saved
with the weights as buffers.

Two implementations of one computation: ``kernel_loops`` (a compiled loop, MiniRocket's own
arithmetic, no dense tensor of comparisons) for every forward pass, and the convolution below in
torch for ONNX tracing. A bias never equals a sum of the sequence it was fitted on (``untie``), so
the two count the same steps although they add in different orders.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from encoder.nn.kernel_loops import ppv_features
from encoder.sequences import exporting, valid_mask

TAPS = 9
KERNELS = torch.full((84, TAPS), -1.0).index_put_(  # (84, 9): -1, and 2 at three taps
    (torch.arange(84).repeat_interleave(3), torch.tensor(list(itertools.combinations(range(TAPS), 3))).flatten()),
    torch.tensor(2.0))
PLUS_TAPS = np.array([np.flatnonzero(k.numpy() > 0) for k in KERNELS])  # (84, 3): where each weight is 2
MAX_DILATIONS = 32  # per kernel, as MiniRocket
CHUNK_ELEMENTS = 1 << 24  # convolution outputs held at once (floats): bounds memory for long, wide batches


def dilations_for(features: int, max_len: int) -> tuple[list[int], list[int]]:
    """MiniRocket's dilations for windows of ``max_len`` steps and about ``features`` features: the
    distinct ``floor(2 ** e)`` for ``e`` evenly spaced from 0 to ``log2((max_len - 1) / 8)``, and how
    many biases (features per kernel) each dilation gets, adding up to ``features // 84``."""
    per_kernel = max(1, features // len(KERNELS))
    n = min(per_kernel, MAX_DILATIONS)
    top = math.log2(max(max_len - 1, 1) / (TAPS - 1)) if max_len > TAPS else 0.0
    values, counts = np.unique(np.floor(np.logspace(0, top, n, base=2)).astype(np.int64), return_counts=True)
    share = (counts * (per_kernel / n)).astype(np.int64)
    share[:per_kernel - share.sum()] += 1  # the remainder to the smallest dilations
    return values.tolist(), share.tolist()


def untie(biases: np.ndarray, sums: np.ndarray) -> np.ndarray:
    """Each bias moved off the sums it was fitted on: a bias equal to a sum (a quantile landing on a
    repeated value) goes halfway to the next larger sum, or a little above the largest. A sequence's
    count of sums above each bias is unchanged, but no longer turns on the last bit of an addition."""
    values = np.unique(sums)  # sorted
    out = biases.astype(np.float64).copy()
    tol = 1e-5 * max(1.0, float(np.abs(values).max(initial=0.0)))
    for j, b in enumerate(out):
        at = np.searchsorted(values, b - tol)  # the first value not below b - tol
        if at < len(values) and abs(values[at] - b) <= tol:  # on a value: halfway to the next
            above = values[values > values[at] + tol]
            out[j] = (values[at] + above[0]) / 2 if len(above) else values[at] + max(tol, 1e-3 * abs(values[at]))
    return out


def golden_quantiles(n: int) -> np.ndarray:
    """``n`` quantiles in (0, 1) spread by the golden ratio (a low-discrepancy sequence), as MiniRocket."""
    return (np.arange(1, n + 1) * ((math.sqrt(5) + 1) / 2)) % 1


class RandomKernelFeatures(nn.Module):
    """``features`` (rounded down to a multiple of 84) PPV features of (B, T, C) inputs: (B, features).

    Feature order: dilation, then kernel, then bias. A kernel-dilation pair with an odd index
    (kernel + dilation position) counts only the steps whose receptive field lies inside the sequence
    (MiniRocket's unpadded half), or every step where the sequence is too short for any."""

    def __init__(self, channels: int, features: int, max_len: int):
        super().__init__()
        dilations, counts = dilations_for(features, max_len)
        self.dilations, self.counts = dilations, counts
        n = len(KERNELS) * sum(counts)
        self.register_buffer("kernels", KERNELS.clone())
        self.register_buffer("channels", torch.zeros(len(dilations), len(KERNELS), channels))  # (D, 84, C) subsets
        self.register_buffer("biases", torch.zeros(n))  # (n,) set by ``fit``

    @property
    def out_dim(self) -> int:
        return len(self.biases)

    def names(self) -> list[str]:
        """One name per feature, in order: ``ppv:d<dilation>/k<kernel>/b<bias>``."""
        return [f"ppv:d{d}/k{k}/b{j}" for d, count in zip(self.dilations, self.counts)
                for k in range(len(KERNELS)) for j in range(count)]

    def _sums(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """Dilation ``i``'s convolutions of x (B, T, C), zero beyond each sequence, summed over each
        kernel's channels: (B, 84, T). One convolution of C input channels whose weights are each
        kernel's taps on its channels and zero elsewhere: the sum over channels happens inside it."""
        d = self.dilations[i]
        w = self.kernels[:, None, :] * self.channels[i][:, :, None]  # (84, C, 9): kernel k on its channels
        return F.conv1d(x.transpose(1, 2), w.to(x.dtype), padding=4 * d, dilation=d)  # (B, 84, T)

    def _counted(self, lengths: torch.Tensor, T: int, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The steps each kernel of dilation ``i`` counts, by parity: (B, 1, 2, T), the kernels
        viewed as (42, 2) pairs; a kernel ``k`` with ``(k + i)`` odd counts the inner steps, the
        others every valid step. Also how many steps that is, (B, 1, 2, 1)."""
        valid = valid_mask(lengths, T)  # (B, T)
        t = torch.arange(T, device=lengths.device)[None]  # (1, T)
        edge = 4 * self.dilations[i]
        inner = valid & (t >= edge) & (t < lengths[:, None] - edge)  # (B, T)
        inner = inner | (valid & ~inner.any(1, keepdim=True))  # too short for any: every step
        pair = (inner, valid) if i % 2 else (valid, inner)  # kernel 2j + p is odd when p + i is
        counted = torch.stack(pair, dim=1)[:, None]  # (B, 1, 2, T)
        return counted, counted.sum(3, keepdim=True)  # (B, 1, 2, T), (B, 1, 2, 1)

    @torch.no_grad()
    def fit(self, x: torch.Tensor, lengths: torch.Tensor, seed: int) -> "RandomKernelFeatures":
        """Draw each kernel-dilation pair's channels among those that vary in x (B, T, C) (all, if
        none does), as MiniRocket draws them (2 ** U(0, log2(min(C, 9) + 1)) of them), and fit its
        biases: golden quantiles of its sums over the valid steps of one random sequence of x."""
        B, T, C = x.shape  # training sequences, steps, channels
        rng = np.random.default_rng(seed)
        x = x.masked_fill(~valid_mask(lengths, T)[..., None], 0.0)
        flat = x[valid_mask(lengths, T)]  # (steps, C)
        varying = np.flatnonzero((flat.std(0) > 0).numpy()) if len(flat) > 1 else np.arange(C)
        varying = varying if len(varying) else np.arange(C)
        top = math.log2(min(len(varying), TAPS) + 1)
        masks = torch.zeros_like(self.channels)
        for i, k in itertools.product(range(len(self.dilations)), range(len(KERNELS))):
            n = min(len(varying), int(2 ** rng.uniform(0, top)))
            masks[i, k, rng.choice(varying, n, replace=False)] = 1.0
        self.channels.copy_(masks)
        q = golden_quantiles(len(self.biases))
        biases, f = [], 0
        for i, count in enumerate(self.counts):
            for k, row in enumerate(rng.integers(0, B, len(KERNELS))):
                sums = self._sums(x[row:row + 1, :int(lengths[row])], i)[0, k].double().numpy()  # (L,): kernel k
                biases.append(untie(np.quantile(sums, q[f:f + count]), sums))
                f += count
        self.biases.copy_(torch.from_numpy(np.concatenate(biases)).to(self.biases.dtype))
        return self

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """PPV features (B, out_dim) of x (B, T, C) over each sequence's counted steps."""
        if exporting():
            return self.convolved(x, lengths)
        out = np.empty((x.shape[0], self.out_dim), np.float64 if x.dtype == torch.float64 else np.float32)
        return torch.from_numpy(self.features_into(x, lengths, out)).to(device=x.device, dtype=x.dtype)

    def features_into(self, x: torch.Tensor, lengths: torch.Tensor, out: np.ndarray) -> np.ndarray:
        """``forward``'s features written into ``out``, a (B, out_dim) float32 or float64 NumPy array
        of any strides, e.g. the transposed rows of a (channels, B) matrix of codes: no copy."""
        return ppv_features(x.detach().float().cpu().numpy(), lengths.cpu().numpy(), self.dilations, self.counts,
                            PLUS_TAPS, self.channels.cpu().numpy(), self.biases.cpu().numpy(),
                            threads=torch.get_num_threads(), out=out)  # (B, out_dim)

    def convolved(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``forward`` as torch convolutions and comparisons (traceable, for ONNX; slower)."""
        B, T, C = x.shape  # batch, steps, channels
        lengths = lengths.to(x.device)
        x = x.masked_fill(~valid_mask(lengths, T)[..., None], 0.0)
        per_row = len(KERNELS) * T * (max(self.counts) + 1)  # floats of one row's sums and tests
        rows = B if exporting() else max(1, CHUNK_ELEMENTS // max(1, per_row))  # traced: one chunk
        out = []
        for lo in range(0, B, rows):  # bounded memory: (rows, 84, T) sums, (rows, 84, T, count) tests
            xs, ls = x[lo:lo + rows], lengths[lo:lo + rows]
            parts, f = [], 0
            for i, count in enumerate(self.counts):
                sums = self._sums(xs, i).unflatten(1, (len(KERNELS) // 2, 2))  # (b, 42, 2, T): kernel 2j + p
                counted, n_counted = self._counted(ls, T, i)  # (b, 1, 2, T), (b, 1, 2, 1)
                bias = self.biases[f:f + len(KERNELS) * count].view(len(KERNELS) // 2, 2, 1, count)  # (42, 2, 1, count)
                sums = sums.masked_fill(~counted, float("-inf"))  # uncounted steps exceed no bias
                above = (sums[..., None] > bias).to(x.dtype)  # (b, 42, 2, T, count); floats sum 2x faster
                ppv = above.sum(3) / n_counted.to(x.dtype)  # (b, 42, 2, count)
                parts.append(ppv.flatten(1))  # (b, 84 count): kernel, then bias
                f += len(KERNELS) * count
            out.append(torch.cat(parts, dim=1))  # (b, out_dim)
        return torch.cat(out, dim=0)  # (B, out_dim)
