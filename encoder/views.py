"""Two overlapping crops of every sequence: the views the contrastive term of training compares.

As in TS2Vec, each sequence of length L gets a shared stretch [a, b) (1 <= b - a <= L) and two
views around it: view 1 = [s, b) with s <= a, view 2 = [a, e) with e >= b. The shared events are
then seen in two different contexts. The shared stretch is the same fraction of every length in
a batch (TS2Vec shares one overlap length); its place and the views' ends are drawn per sequence. Pure functions of the batch and a ``torch.Generator``.
"""
from __future__ import annotations

import dataclasses

import torch


@dataclasses.dataclass(frozen=True)
class CropPair:
    """Per-sequence positions (B,) within the window: view 1 starts at ``start1``, view 2 at the
    shared stretch's start ``shared_start``; ``shared`` steps are common; views end at ``end1``/``end2``."""

    start1: torch.Tensor
    shared_start: torch.Tensor
    shared: torch.Tensor
    end2: torch.Tensor

    @property
    def lengths1(self) -> torch.Tensor:
        return self.shared_start + self.shared - self.start1

    @property
    def lengths2(self) -> torch.Tensor:
        return self.end2 - self.shared_start

    @property
    def offset1(self) -> torch.Tensor:
        """Where the shared stretch begins inside view 1 (it begins view 2)."""
        return self.shared_start - self.start1


def overlapping_crops(lengths: torch.Tensor, gen: torch.Generator) -> CropPair:
    """Draw a ``CropPair`` for sequences of ``lengths`` (B,), every choice uniform."""
    u = torch.rand((4, len(lengths)), generator=gen)  # (4, B)
    u[0] = u[0, 0]  # one shared fraction for the batch, as TS2Vec shares one overlap length
    L = lengths.to(torch.float32)
    shared = 1 + (u[0] * L).long().clamp(max=lengths - 1)  # in [1, L]
    a = (u[1] * (lengths - shared + 1)).long()  # in [0, L - shared]
    b = a + shared
    start1 = (u[2] * (a + 1)).long()  # in [0, a]
    end2 = b + (u[3] * (lengths - b + 1)).long()  # in [b, L]
    return CropPair(start1, a, shared, end2)


def crop(num: torch.Tensor, cat: torch.Tensor, start: torch.Tensor, lengths: torch.Tensor):
    """The steps [start, start + lengths) of each left-aligned sequence, left-aligned and zero-padded.

    num (B, T, F_num), cat (B, T, F_cat) -> num (B, T', F_num), cat (B, T', F_cat), lengths (B,)."""
    T = int(lengths.max())
    steps = torch.arange(T)[None, :]  # (1, T')
    valid = steps < lengths[:, None]  # (B, T')
    idx = torch.minimum(start[:, None] + steps, (start + lengths - 1)[:, None])  # (B, T') source step
    out_num = num.gather(1, idx[..., None].expand(-1, -1, num.shape[-1])) * valid[..., None]  # (B, T', F_num)
    out_cat = cat.gather(1, idx[..., None].expand(-1, -1, cat.shape[-1])) * valid[..., None]  # (B, T', F_cat)
    return out_num, out_cat, lengths


def shared_steps(codes1: torch.Tensor, codes2: torch.Tensor, pair: CropPair):
    """The step codes of the shared stretch from both views, aligned: (B, C, K) x2 and valid (B, C)."""
    C = int(pair.shared.max())
    steps = torch.arange(C, device=codes1.device)[None, :]  # (1, C)
    valid = steps < pair.shared[:, None]  # (B, C)
    idx1 = torch.minimum(pair.offset1[:, None] + steps, (pair.lengths1 - 1)[:, None])  # (B, C)
    z1 = codes1.gather(1, idx1[..., None].expand(-1, -1, codes1.shape[-1]))  # (B, C, K)
    return z1, codes2[:, :C], valid
