"""Sequence windows over sorted event rows: the latest ``max_len`` events up to an end row, padded.

Every sequence is identified by its *end row* in the (entity, time)-sorted table: for
``unit="entity"`` the entity's last row, for ``unit="event"`` each row itself. The window is the
end row and up to ``max_len - 1`` earlier rows of the same entity, never a later one. Windows are
left-aligned: step 0 is the oldest kept event, padding fills the tail (index 0 / value 0).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import torch


@dataclasses.dataclass
class EventArrays:
    """Preprocessed rows sorted by (entity, time).

    num : float32 (N, F_num); cat : int64 (N, F_cat); starts : int64 (N,), first row of each row's entity.
    """

    num: np.ndarray
    cat: np.ndarray
    starts: np.ndarray

    def __len__(self) -> int:
        return len(self.starts)


def entity_end_rows(starts: np.ndarray) -> np.ndarray:
    """The last row of every entity, in entity order."""
    n = len(starts)
    is_last = np.ones(n, dtype=bool)
    is_last[:-1] = starts[1:] != starts[:-1]
    return np.flatnonzero(is_last)


def window_bounds(ends: np.ndarray, starts: np.ndarray, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """First row and length of the window ending at each row of ``ends`` (latest events kept)."""
    first = np.maximum(starts[ends], ends - max_len + 1)
    return first, ends - first + 1


def gather_windows(arrays: EventArrays, ends: np.ndarray, max_len: int):
    """Padded batch of the windows ending at ``ends``.

    Returns
    -------
    num : float32 tensor (B, T, F_num), zero on padded steps
    cat : int64 tensor (B, T, F_cat), 0 on padded steps
    lengths : int64 tensor (B,), each >= 1; T = max(lengths)
    """
    first, lengths = window_bounds(ends, arrays.starts, max_len)
    T = int(lengths.max())
    steps = np.arange(T)
    valid = steps[None, :] < lengths[:, None]  # (B, T)
    idx = np.where(valid, first[:, None] + steps[None, :], 0)  # (B, T) row of each step
    num = arrays.num[idx]  # (B, T, F_num)
    num[~valid] = 0.0
    cat = arrays.cat[idx]  # (B, T, F_cat)
    cat[~valid] = 0
    return torch.from_numpy(num), torch.from_numpy(cat), torch.from_numpy(lengths.astype(np.int64))


def valid_mask(lengths: torch.Tensor, T: int) -> torch.Tensor:
    """Boolean (B, T): True on real steps, False on padding."""
    return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]


def step_weights(lengths: torch.Tensor, T: int, halflife: float) -> torch.Tensor:
    """Loss weight of each step (B, T): 0 on padding; on valid steps 1, or with ``halflife > 0``
    ``0.5 ** (steps before the last / halflife)`` so the latest events count most."""
    valid = valid_mask(lengths, T)
    if not halflife:
        return valid.float()
    back = (lengths[:, None] - 1 - torch.arange(T, device=lengths.device)[None, :]).clamp(min=0)  # (B, T)
    return torch.pow(0.5, back.float() / halflife) * valid
