"""The LSTM autoencoder's modules and their frozen config; forward passes only, no training logic."""
from __future__ import annotations

import dataclasses

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .sequences import valid_mask


def embedding_dim_for(cardinality: int) -> int:
    """Default embedding size for a vocabulary (fast.ai's rule of thumb, capped at 32)."""
    return int(min(32, max(2, round(1.6 * cardinality ** 0.56))))


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild ``LSTMAutoencoder``; saved in the encoder manifest."""

    n_numeric: int
    cardinalities: tuple[int, ...] = ()
    embedding_dims: tuple[int, ...] = ()
    hidden_size: int = 64
    num_layers: int = 1
    bidirectional: bool = True
    merge: str = "concat"
    branch_size: int = 32
    pooling: tuple[str, ...] = ("last", "mean", "max")
    latent_dim: int = 32
    dropout: float = 0.0
    max_len: int = 64

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


class StepInput(nn.Module):
    """Per-step input vector from numeric channels and one embedding per categorical column."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.embeddings = nn.ModuleList(
            nn.Embedding(card, dim, padding_idx=0)
            for card, dim in zip(config.cardinalities, config.embedding_dims))
        emb_total = sum(config.embedding_dims)
        self.merge = config.merge
        if config.merge == "branches":
            self.num_branch = nn.Linear(config.n_numeric, config.branch_size) if config.n_numeric else None
            self.cat_branch = nn.Linear(emb_total, config.branch_size) if emb_total else None
            n_branches = (config.n_numeric > 0) + (emb_total > 0)
            self.mix = nn.Sequential(nn.Linear(n_branches * config.branch_size, config.branch_size), nn.ReLU())
            self.out_dim = config.branch_size
        else:
            self.out_dim = config.n_numeric + emb_total

    def forward(self, num: torch.Tensor, cat: torch.Tensor) -> torch.Tensor:
        embs = [emb(cat[..., j]) for j, emb in enumerate(self.embeddings)]  # each (B, T, E_j)
        if self.merge == "concat":
            return torch.cat([num, *embs], dim=-1)  # (B, T, F_num + sum E_j)
        parts = []
        if self.num_branch is not None:
            parts.append(torch.relu(self.num_branch(num)))  # (B, T, branch)
        if self.cat_branch is not None:
            parts.append(torch.relu(self.cat_branch(torch.cat(embs, dim=-1))))  # (B, T, branch)
        return self.mix(torch.cat(parts, dim=-1))  # (B, T, branch)


class SequenceEncoderNet(nn.Module):
    """Packed LSTM over valid steps only, pooled and projected to the latent code."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.step_input = StepInput(config)
        self.lstm = nn.LSTM(self.step_input.out_dim, config.hidden_size, num_layers=config.num_layers,
                            batch_first=True, bidirectional=config.bidirectional,
                            dropout=config.dropout if config.num_layers > 1 else 0.0)
        state = config.hidden_size * (2 if config.bidirectional else 1)
        self.attention = nn.Linear(state, 1) if "attention" in config.pooling else None
        self.project = nn.Linear(state * len(config.pooling), config.latent_dim)

    def forward(self, num: torch.Tensor, cat: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        B, T, _ = num.shape  # batch, steps, numeric channels
        x = self.step_input(num, cat)  # (B, T, D_in)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, (h_n, _) = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=T)  # (B, T, S), zeros on padding
        valid = valid_mask(lengths.to(out.device), T)[..., None]  # (B, T, 1)
        pooled = []
        for kind in self.config.pooling:
            if kind == "last":
                d = 2 if self.config.bidirectional else 1
                pooled.append(torch.cat(list(h_n[-d:]), dim=-1))  # (B, S): last layer, both directions
            elif kind == "mean":
                pooled.append(out.sum(1) / lengths.to(out.dtype)[:, None])  # (B, S)
            elif kind == "max":
                pooled.append(out.masked_fill(~valid, float("-inf")).amax(1))  # (B, S)
            else:
                scores = self.attention(out).masked_fill(~valid, float("-inf"))  # (B, T, 1)
                pooled.append((torch.softmax(scores, dim=1) * out).sum(1))  # (B, S)
        return self.project(torch.cat(pooled, dim=-1))  # (B, latent_dim)


class SequenceDecoderNet(nn.Module):
    """Reconstructs every step from the code and the step's position relative to both ends."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.init = nn.Linear(config.latent_dim, 2 * config.num_layers * config.hidden_size)
        self.lstm = nn.LSTM(config.latent_dim + 2, config.hidden_size, num_layers=config.num_layers,
                            batch_first=True)
        self.numeric_head = nn.Linear(config.hidden_size, config.n_numeric) if config.n_numeric else None
        self.categorical_heads = nn.ModuleList(nn.Linear(config.hidden_size, card) for card in config.cardinalities)

    def forward(self, z: torch.Tensor, lengths: torch.Tensor, T: int):
        B, K = z.shape  # batch, latent
        L, H = self.config.num_layers, self.config.hidden_size
        steps = torch.arange(T, device=z.device, dtype=z.dtype)[None, :]  # (1, T)
        lens = lengths.to(z.device, z.dtype)[:, None]  # (B, 1)
        scale = float(self.config.max_len)
        position = torch.stack([steps.expand(B, T) / scale, (lens - 1 - steps) / scale], dim=-1)  # (B, T, 2)
        inp = torch.cat([z[:, None, :].expand(B, T, K), position], dim=-1)  # (B, T, K + 2)
        h0, c0 = torch.tanh(self.init(z)).view(B, 2, L, H).permute(1, 2, 0, 3).contiguous()  # 2 x (L, B, H)
        out, _ = self.lstm(inp, (h0, c0))  # (B, T, H)
        num_hat = self.numeric_head(out) if self.numeric_head is not None else out[..., :0]  # (B, T, F_num)
        cat_logits = [head(out) for head in self.categorical_heads]  # each (B, T, V_j)
        return num_hat, cat_logits


class LSTMAutoencoder(nn.Module):
    """Encoder and decoder; ``forward`` returns the code and the reconstruction."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.encoder = SequenceEncoderNet(config)
        self.decoder = SequenceDecoderNet(config)

    def forward(self, num: torch.Tensor, cat: torch.Tensor, lengths: torch.Tensor):
        z = self.encoder(num, cat, lengths)  # (B, K)
        num_hat, cat_logits = self.decoder(z, lengths, num.shape[1])
        return z, num_hat, cat_logits
