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

    def rows(self, first: int, stop: int) -> "EventArrays":
        """Rows ``first`` to ``stop - 1``, whole entities, as arrays of their own (views; their
        ``starts`` count from ``first``)."""
        return EventArrays(self.num[first:stop], self.cat[first:stop], self.starts[first:stop] - first)


def entity_end_rows(starts: np.ndarray) -> np.ndarray:
    """The last row of every entity, in entity order."""
    n = len(starts)
    is_last = np.ones(n, dtype=bool)
    is_last[:-1] = starts[1:] != starts[:-1]
    return np.flatnonzero(is_last)


def truncation(sizes: np.ndarray, max_len: int, unit: str) -> dict:
    """What a ``max_len`` window drops from entities of ``sizes`` events, JSON-ready.

    ``unit="entity"``: the sequences longer than ``max_len`` and the oldest events they lose;
    ``unit="event"``: the events whose history is longer than the window (each is coded from its
    latest ``max_len`` events, by design)."""
    sizes = np.asarray(sizes, dtype=np.int64)
    over = sizes > max_len
    out = {"unit": unit, "max_len": int(max_len), "n_sequences": int(len(sizes)),
           "longest": int(sizes.max()) if len(sizes) else 0}
    if unit == "entity":
        return out | {"n_truncated": int(over.sum()), "events_dropped": int((sizes[over] - max_len).sum())}
    n_events = int(sizes.sum())
    longer = int(np.maximum(sizes - max_len, 0).sum())  # events with more than max_len - 1 before them
    return out | {"n_events": n_events, "n_events_windowed": longer}


def truncation_message(info: dict, source: str) -> str | None:
    """One line saying which sequences of ``source`` lost events (``info`` from ``truncation``), or
    None when none did; the event unit's window is by design and has ``window_note`` instead."""
    if info["unit"] == "entity" and info["n_truncated"]:
        return (f"{info['n_truncated']} of {info['n_sequences']} sequences in '{source}' are longer than "
                f"max_len {info['max_len']} (longest {info['longest']}): their oldest "
                f"{info['events_dropped']} events in all are not coded; raise --max-len to keep them")
    return None


def window_note(info: dict) -> str | None:
    """For ``unit="event"``: one line on how many events have more history than the window."""
    if info["unit"] != "event" or not info.get("n_events_windowed"):
        return None
    return (f"{info['n_events_windowed']} of {info['n_events']} events have more than {info['max_len'] - 1} "
            f"earlier events: each is coded from its latest {info['max_len']} (the event window; --max-len sets it)")


def mean_window_steps(sizes, max_len: int, patch: int, unit: str) -> float:
    """Mean LSTM steps of a window, ``ceil(min(events, max_len) / patch)``, over the windows of
    entities of ``sizes`` events: one per entity (``unit="entity"``), one per event ("event")."""
    sizes = np.asarray(sizes, dtype=np.int64)
    if unit == "entity":
        return float(np.mean(-(-np.minimum(sizes, max_len) // patch)))
    k = np.arange(1, int(sizes.max()) + 1)  # window of the k-th event of an entity: min(k, max_len) events
    steps = np.cumsum(-(-np.minimum(k, max_len) // patch))  # steps of an entity's first k windows, summed
    return float(steps[sizes - 1].sum() / sizes.sum())


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


def by_length(fn, num: torch.Tensor, cat: torch.Tensor, lengths: torch.Tensor, group: int) -> torch.Tensor:
    """``fn(num, cat, lengths)`` -> (B, K) computed over groups of up to ``group`` sequences of
    similar length, each cut to its own longest: a recurrent network then steps through little
    padding (about a third of a batch of 10 to 30 events is padding). Rows come back in input order.
    """
    B = num.shape[0]  # batch; num is (B, T, F_num), cat (B, T, F_cat)
    if B <= group:
        return fn(num, cat, lengths)
    order = torch.from_numpy(np.argsort(lengths.numpy(), kind="stable"))  # shortest first
    parts = []
    for i in range(0, B, group):
        rows = order[i:i + group]
        T = int(lengths[rows].max())
        parts.append(fn(num[rows, :T], cat[rows, :T], lengths[rows]))  # (b, K)
    out = parts[0].new_empty(B, parts[0].shape[1])  # (B, K)
    out[order] = torch.cat(parts)
    return out


def exporting() -> bool:
    """True while a graph is being traced or exported (ONNX): no branch may then read tensor values."""
    return torch.jit.is_tracing() or torch.compiler.is_exporting()


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
