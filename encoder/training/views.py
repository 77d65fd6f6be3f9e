"""Two overlapping crops of every sequence: the views the contrastive term of training compares.

As in TS2Vec, each sequence of length L gets a shared stretch [a, b) (1 <= b - a <= L) and two
views around it: view 1 = [s, b) with s <= a, view 2 = [a, e) with e >= b. The shared events are
then seen in two different contexts. The shared stretch is the same fraction of every length in
a batch (TS2Vec shares one overlap length); its place and the views' ends are drawn per sequence.
Pure functions of the batch and a ``torch.Generator``.
"""
from __future__ import annotations

import dataclasses

import torch

from encoder.sequences import valid_mask


@dataclasses.dataclass(frozen=True)
class CropPair:
    """Per-sequence positions (B,) within the window: view 1 is [``start1``, shared end), view 2 is
    [``shared_start``, ``end2``), and the ``shared`` steps from ``shared_start`` are in both."""

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


def _take(x: torch.Tensor, start: torch.Tensor, lengths: torch.Tensor, T: int) -> torch.Tensor:
    """Steps [start, start + lengths) of each sequence of (B, T0, F), left-aligned: (B, T, F); steps
    past a length repeat its last step."""
    steps = torch.arange(T, device=x.device)[None, :]  # (1, T)
    idx = torch.minimum(start[:, None] + steps, (start + lengths - 1)[:, None])  # (B, T) source step
    return x.gather(1, idx[..., None].expand(-1, -1, x.shape[-1]))  # (B, T, F)


def crop(num: torch.Tensor, cat: torch.Tensor, start: torch.Tensor, lengths: torch.Tensor):
    """The steps [start, start + lengths) of each left-aligned sequence, left-aligned and zero-padded.

    num (B, T, F_num), cat (B, T, F_cat) -> num (B, T', F_num), cat (B, T', F_cat), lengths (B,)."""
    T = int(lengths.max())
    valid = valid_mask(lengths, T)[..., None]  # (B, T', 1)
    return _take(num, start, lengths, T) * valid, _take(cat, start, lengths, T) * valid, lengths


def shared_steps(codes1: torch.Tensor, codes2: torch.Tensor, pair: CropPair):
    """The step codes of the shared stretch from both views, aligned: (B, C, K) x2 and valid (B, C)."""
    C = int(pair.shared.max())
    valid = valid_mask(pair.shared, C)  # (B, C)
    return _take(codes1, pair.offset1, pair.shared, C), codes2[:, :C], valid
