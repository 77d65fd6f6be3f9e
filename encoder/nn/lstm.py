"""Reading a padded batch: the step input, patches of events per step, and a masked (bi)LSTM whose
valid steps never see padding."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from encoder.sequences import exporting, valid_mask

if TYPE_CHECKING:
    from encoder.nn.config import ModelConfig


class StepInput(nn.Module):
    """Per-step input vector: the numeric channels, then one embedding per categorical column."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.embeddings = nn.ModuleList(
            nn.Embedding(card, dim, padding_idx=0)
            for card, dim in zip(config.cardinalities, config.embedding_dims))
        self.out_dim = config.n_numeric + sum(config.embedding_dims)

    def forward(self, num: torch.Tensor, cat: torch.Tensor) -> torch.Tensor:
        embs = [emb(cat[..., j]) for j, emb in enumerate(self.embeddings)]  # each (B, T, E_j)
        return torch.cat([num, *embs], dim=-1)  # (B, T, F_num + sum E_j)


def patch_lengths(lengths: torch.Tensor, patch: int) -> torch.Tensor:
    """LSTM steps of sequences of ``lengths`` events read ``patch`` events per step: (B,) -> (B,)."""
    return (lengths + patch - 1) // patch


def fold_patches(x: torch.Tensor, lengths: torch.Tensor, patch: int) -> torch.Tensor:
    """Concatenate every ``patch`` consecutive steps: (B, T, C) -> (B, ceil(T / patch), patch * C).

    Steps past a sequence's length are zeroed first, so the last, partial patch holds zeros, never
    another input's values."""
    if patch == 1:
        return x
    B, T, C = x.shape  # batch, events, input channels
    x = x * valid_mask(lengths.to(x.device), T)[..., None]  # (B, T, C)
    x = torch.cat([x, x.new_zeros(B, patch - 1, C)], dim=1)  # (B, T + patch - 1, C)
    P = (T + patch - 1) // patch  # patches
    return x[:, :P * patch].reshape(B, P, patch * C)  # (B, P, patch * C)


def unfold_patches(x: torch.Tensor, patch: int, T: int) -> torch.Tensor:
    """Inverse of ``fold_patches`` for per-step outputs: (B, P, patch * C) -> (B, T, C)."""
    if patch == 1:
        return x
    B, P, PC = x.shape  # batch, patches, patch * channels
    return x.reshape(B, P * patch, PC // patch)[:, :T]  # (B, T, C)


class MaskedLSTM(nn.Module):
    """A (bidirectional) LSTM over right-padded batches whose valid steps never see padding.

    The forward direction reads the padded batch as is: a valid step depends on earlier steps only.
    The backward direction reads each sequence reversed within its own length, so its padding also
    trails. This is the arithmetic of a packed LSTM, on the faster padded kernels.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, bidirectional: bool, dropout: float):
        super().__init__()
        sizes = [input_size] + [hidden_size * (2 if bidirectional else 1)] * (num_layers - 1)
        self.forward_layers = nn.ModuleList(nn.LSTM(n, hidden_size, batch_first=True) for n in sizes)
        self.backward_layers = nn.ModuleList(nn.LSTM(n, hidden_size, batch_first=True) for n in sizes) \
            if bidirectional else None
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The last layer's step outputs, one (B, T, H) tensor per direction, and the final states (B, D*H).

        Each direction's valid steps come first and padding (garbage) trails; the backward
        direction's steps are in reversed time order; ``in_time_order`` and ``backward_in_time_order``
        align them step by step.
        """
        B, T, _ = x.shape  # batch, steps, input channels
        lengths = lengths.to(x.device)
        rev = self._reversal(lengths, T)  # (B, T) or None when nothing is padded
        last = lengths - 1  # (B,)
        rows = torch.arange(B, device=x.device)
        n = len(self.forward_layers)
        for i, fwd in enumerate(self.forward_layers):
            out, _ = fwd(x)  # (B, T, H)
            outs, finals = [out], [out[rows, last]]  # (B, H): state after each sequence's latest event
            if self.backward_layers is not None:
                back, _ = self.backward_layers[i](_reverse(x, rev))  # (B, T, H) in reversed order
                outs.append(back)
                finals.append(back[rows, last])  # (B, H): state after each sequence's oldest event
            if i < n - 1:  # the next layer reads both directions in time order
                x = self.dropout(_joined(outs, rev))  # (B, T, D*H)
        return outs, torch.cat(finals, dim=-1)

    @staticmethod
    def _reversal(lengths: torch.Tensor, T: int) -> torch.Tensor | None:
        """Indices reversing each sequence within its own length, padding left in place; None if unpadded."""
        if not exporting() and bool((lengths == T).all()):
            return None  # a plain flip reverses every sequence
        steps = torch.arange(T, device=lengths.device)[None, :]  # (1, T)
        return torch.where(steps < lengths[:, None], lengths[:, None] - 1 - steps, steps)  # (B, T)

    def in_time_order(self, outs: list[torch.Tensor], lengths: torch.Tensor) -> torch.Tensor:
        """Both directions' step outputs aligned on time: (B, T, D*H), garbage on padding."""
        return _joined(outs, self._reversal(lengths.to(outs[0].device), outs[0].shape[1]))  # (B, T, D*H)

    def backward_in_time_order(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """A (B, T, C) tensor in the backward direction's step order, put in time order."""
        return _reverse(x, self._reversal(lengths.to(x.device), x.shape[1]))  # (B, T, C)


def _reverse(x: torch.Tensor, rev: torch.Tensor | None) -> torch.Tensor:
    """Reverse each sequence of (B, T, F) within its length (``rev`` from ``MaskedLSTM._reversal``).

    Whole F-vectors are picked by their row in x's own memory (``index_select``): five times as fast
    as ``gather`` along T, which indexes every element. nn.LSTM's batch-first outputs are (B, T, F)
    views of (T, B, F) buffers and are read in that layout, without a copy."""
    if rev is None:
        return x.flip(1)  # (B, T, F)
    B, T, F = x.shape  # batch, steps, features
    batch = torch.arange(B, device=x.device)[:, None]  # (B, 1)
    if x.transpose(0, 1).is_contiguous():  # a (T, B, F) buffer: step t of sequence b is row t * B + b
        flat, rows = x.transpose(0, 1).reshape(T * B, F), rev * B + batch  # (T * B, F), (B, T)
    else:
        flat, rows = x.reshape(B * T, F), batch * T + rev  # (B * T, F), (B, T)
    return flat.index_select(0, rows.reshape(-1)).view(B, T, F)  # (B, T, F)


def _joined(outs: list[torch.Tensor], rev: torch.Tensor | None) -> torch.Tensor:
    """Forward states and the backward states put back in time order, side by side: (B, T, D*H)."""
    return torch.cat([outs[0], *(_reverse(o, rev) for o in outs[1:])], dim=-1)  # (B, T, D*H)
