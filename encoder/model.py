"""The LSTM autoencoder's modules and their frozen config; forward passes only, no training logic."""
from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import nn

from .kernels import RandomKernelFeatures
from .sequences import exporting, valid_mask


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
    pooling: tuple[str, ...] = ("max",)
    latent_dim: int = 32
    dropout: float = 0.0
    max_len: int = 64
    patch: int = 1
    surprise: bool = False
    causal: bool = False
    surprise_halflife: float = 0.0
    surprise_scale: bool = False
    summary_stats: bool = False
    conv_dim: int = 0
    conv_depth: int = 0
    conv_channels: int = 32
    segments: int = 0
    kernel_features: int = 0

    @property
    def pooled_dim(self) -> int:
        """Width of the step codes and of their pooled part of the code: ``latent_dim`` from the LSTM,
        then ``conv_dim`` from the dilated convolution branch."""
        return self.latent_dim + self.conv_dim

    @property
    def segment_dim(self) -> int:
        """Channels of the segment maxima: ``pooled_dim`` for each of ``segments`` equal parts."""
        return self.segments * self.pooled_dim

    @property
    def surprise_dim(self) -> int:
        """Surprise channels of the code: one per numeric input channel and per categorical column,
        three times over with a ``surprise_halflife`` (the latest event's, their recent mean and variance)."""
        if not self.surprise:
            return 0
        return (self.n_numeric + len(self.cardinalities)) * (3 if self.surprise_halflife > 0 else 1)

    @property
    def summary_dim(self) -> int:
        """Summary-statistic channels of the code: ``len(SUMMARY_STATS)`` per numeric input channel."""
        return len(SUMMARY_STATS) * self.n_numeric if self.summary_stats else 0

    @property
    def kernel_dim(self) -> int:
        """Random-kernel channels of the code (``kernels.RandomKernelFeatures``): ``kernel_features``
        (a multiple of 84) where the sequences have numeric channels to convolve."""
        return self.kernel_features if self.n_numeric else 0

    @property
    def code_dim(self) -> int:
        """Width of the code: ``pooled_dim`` pooled channels, the ``segment_dim`` channels, the
        ``surprise_dim`` channels, the ``summary_dim`` channels, then the ``kernel_dim`` channels."""
        return self.pooled_dim + self.segment_dim + self.surprise_dim + self.summary_dim + self.kernel_dim

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        from .config import legacy_options
        d = legacy_options(d, "model_config")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


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


class DilatedConvBlock(nn.Module):
    """A residual pair of "same"-padded convolutions of kernel 3 and one dilation (TS2Vec's
    ``ConvBlock``), on masked inputs: padded steps are zeroed after each convolution, so a valid
    step reads zeros past a sequence's end exactly as it would with no padding at all."""

    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.conv1 = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)
        self.conv2 = nn.Conv1d(channels, channels, 3, padding=dilation, dilation=dilation)

    def forward(self, h: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """h (B, C, P) zero on padding, valid (B, 1, P) -> (B, C, P) zero on padding."""
        out = self.conv1(F.gelu(h)) * valid  # (B, C, P)
        return self.conv2(F.gelu(out)) * valid + h  # (B, C, P)


class DilatedConvBranch(nn.Module):
    """Step codes from dilated convolutions beside the LSTM (TS2Vec's encoder): a linear map of each
    step's inputs, ``depth`` residual blocks whose dilation doubles (1, 2, 4, ...; each step then
    sees 1 + 4 (2^depth - 1) steps around it), and a linear map to ``out`` channels per step."""

    def __init__(self, input_size: int, channels: int, out: int, depth: int):
        super().__init__()
        self.input = nn.Linear(input_size, channels)
        self.blocks = nn.ModuleList(DilatedConvBlock(channels, 2 ** i) for i in range(depth))
        self.output = nn.Linear(channels, out)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """x (B, P, C_in) steps, ``lengths`` (B,) valid steps -> step codes (B, P, out), 0 on padding."""
        valid = valid_mask(lengths.to(x.device), x.shape[1])[:, None, :].to(x.dtype)  # (B, 1, P)
        h = self.input(x).transpose(1, 2) * valid  # (B, C, P)
        for block in self.blocks:
            h = block(h, valid)  # (B, C, P)
        return self.output(h.transpose(1, 2)) * valid.transpose(1, 2)  # (B, P, out)


def _reverse(x: torch.Tensor, rev: torch.Tensor | None) -> torch.Tensor:
    """Reverse each sequence of (B, T, F) within its length (``rev`` from ``MaskedLSTM._reversal``)."""
    return x.flip(1) if rev is None else x.gather(1, rev[..., None].expand(-1, -1, x.shape[-1]))  # (B, T, F)


def _joined(outs: list[torch.Tensor], rev: torch.Tensor | None) -> torch.Tensor:
    """Forward states and the backward states put back in time order, side by side: (B, T, D*H)."""
    return torch.cat([outs[0], *(_reverse(o, rev) for o in outs[1:])], dim=-1)  # (B, T, D*H)


class SequenceEncoderNet(nn.Module):
    """Masked LSTM over valid steps only; each step's states projected to a step code, pooled to the code.

    As in TS2Vec, the projection applies to every step (``steps``: (B, T, K)) and the sequence
    code pools those step codes over valid steps: ``max`` (default), ``mean``, ``last`` (the latest
    event's step code) or ``attention``; several poolings are mixed back to ``pooled_dim`` by a
    linear layer. With ``conv_dim`` a dilated convolution branch (``DilatedConvBranch``) reads the
    same steps beside the LSTM and its step codes follow the LSTM's. The contrastive term of
    training reads the step codes directly.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.step_input = StepInput(config)
        self.lstm = MaskedLSTM(config.patch * self.step_input.out_dim, config.hidden_size, config.num_layers,
                               config.bidirectional, config.dropout if config.num_layers > 1 else 0.0)
        state = config.hidden_size * (2 if config.bidirectional else 1)
        self.project = nn.Linear(state, config.latent_dim)
        self.conv = DilatedConvBranch(config.patch * self.step_input.out_dim, config.conv_channels, config.conv_dim,
                                      config.conv_depth) if config.conv_dim else None
        self.kernels = RandomKernelFeatures(config.n_numeric, config.kernel_features, config.max_len) \
            if config.kernel_dim else None  # not trained: fitted by ``kernels.fit`` after training
        K = config.pooled_dim
        self.attention = nn.Linear(K, 1) if "attention" in config.pooling else None
        self.mix = nn.Linear(len(config.pooling) * K, K) if len(config.pooling) > 1 else None
        if config.surprise:  # next-event head on the forward states: what the past expects of each event
            H = config.hidden_size
            self.start_state = nn.Parameter(torch.zeros(H))  # the "state" before an entity's first event
            out = config.n_numeric * (2 if config.surprise_scale else 1)  # with a scale: mean, then log-scale
            self.next_numeric = nn.Linear(H, out) if config.n_numeric else None
            self.next_categorical = nn.ModuleList(nn.Linear(H, card) for card in config.cardinalities)

    def step_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Step codes per sequence of ``lengths`` events (one per patch of ``config.patch`` events)."""
        return patch_lengths(lengths, self.config.patch)

    def steps(self, num: torch.Tensor, cat: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Step codes (B, P, K) in time order, one per patch of ``config.patch`` events (P = T with
        patch 1); garbage on padded steps. ``step_lengths(lengths)`` gives each sequence's count.
        K is ``config.pooled_dim``: the LSTM's step codes, then the convolution branch's."""
        return self._step_codes(*self._states(num, cat, lengths))

    def _states(self, num, cat, lengths) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """The LSTM's step outputs per direction (B, P, H), the step lengths (B,) and the steps it
        read (B, P, patch * C)."""
        x = fold_patches(self.step_input(num, cat), lengths, self.config.patch)  # (B, P, patch * C)
        lengths = self.step_lengths(lengths)
        outs, _ = self.lstm(x, lengths)  # per direction (B, P, H), valid steps first
        return outs, lengths, x

    def _step_codes(self, outs: list[torch.Tensor], lengths: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Step codes (B, P, pooled_dim): the LSTM states projected, then the convolution branch on ``x``."""
        codes = self._project(outs, lengths)  # (B, P, latent_dim)
        if self.conv is None:
            return codes
        return torch.cat([codes, self.conv(x, lengths)], dim=-1)  # (B, P, latent_dim + conv_dim)

    def _project(self, outs: list[torch.Tensor], lengths: torch.Tensor) -> torch.Tensor:
        """Step codes (B, P, K) in time order from the per-direction states."""
        H = self.config.hidden_size
        w, b = self.project.weight, self.project.bias  # (K, D*H), (K,)
        # nn.LSTM's batch_first outputs are (B, T, H) views of (T, B, H) buffers: project in that layout
        codes = F.linear(outs[0].transpose(0, 1), w[:, :H], b).transpose(0, 1)  # (B, T, K), forward share
        if len(outs) > 1:  # project the backward states first: realigning K channels is cheaper than H
            back = F.linear(outs[1].transpose(0, 1), w[:, H:]).transpose(0, 1)  # (B, T, K), backward order
            codes = codes + self.lstm.backward_in_time_order(back, lengths)  # (B, T, K)
        return codes

    def forward(self, num: torch.Tensor, cat: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The code (B, code_dim): pooled step codes, then with ``surprise`` the latest event's surprise."""
        return self.encode(num, cat, lengths)[0]

    def encode(self, num: torch.Tensor, cat: torch.Tensor, lengths: torch.Tensor, kernels: bool = True):
        """The code (B, code_dim) and, with ``surprise``, the next-event predictions of every event
        from its past: numeric (B, T, F_num) and one (B, T, V_j) logit tensor per categorical column
        (None, [] without). A ``causal`` encoder's code is its ``running_codes`` at the latest event:
        its forward LSTM, one step per event and pooling from ``last``, ``mean``, ``max`` make the
        pooled code below exactly that, so one path serves both (and exports to ONNX).

        ``kernels=False`` leaves the random-kernel features out (the code is ``kernel_dim`` narrower):
        for readers of the trained part only, such as the validation loss and the choice of
        ``segments``, which would otherwise pay for them on every call (on 500-step series the
        kernels are most of an encoder's forward pass)."""
        outs, step_lengths, x = self._states(num, cat, lengths)
        codes = self._step_codes(outs, step_lengths, x)  # (B, P, K)
        pooled = self._pool(codes, step_lengths)  # (B, K)
        if self.config.segments:  # where in the sequence each channel peaks: (B, K + segments K)
            pooled = torch.cat([pooled, segment_max(codes, step_lengths, self.config.segments)], dim=-1)
        stats = [summary_statistics(num, lengths)] if self.config.summary_stats else []  # (B, 10 F_num)
        if kernels and self.kernels is not None and not self.training:  # untrained: left out of training
            stats.append(self.kernels(num, lengths))  # steps, whose loss reads the pooled part only; (B, kernel_dim)
        if not self.config.surprise:
            return torch.cat([pooled, *stats], dim=-1) if stats else pooled, None, []
        next_num, next_cat = self._next_event(outs[0], num)
        s = surprise(next_num, next_cat, num, cat)  # (B, T, S)
        rows, last = torch.arange(num.shape[0], device=num.device), lengths.to(num.device) - 1
        parts = [pooled, s[rows, last]]  # (B, K), (B, S)
        if self.config.surprise_halflife > 0:
            parts.append(latest_trend(s.detach(), lengths, self._decay()))  # (B, 2S), read, not trained through
        return torch.cat(parts + stats, dim=-1), next_num, next_cat

    def running_codes(self, num: torch.Tensor, cat: torch.Tensor, lengths: torch.Tensor):
        """``causal`` encoder: the code after every event, (B, T, code_dim), from that event and the
        earlier ones only, in one pass: the forward LSTM's step code, the running mean and running
        max of the step codes so far, mixed; then with ``surprise`` the event's surprise. Also the
        next-event predictions as in ``encode``. Garbage on padded steps."""
        outs, step_lengths, _ = self._states(num, cat, lengths)  # forward direction only, patch 1, no conv
        codes = self._project(outs, step_lengths)  # (B, T, K)
        seen = torch.arange(1, codes.shape[1] + 1, device=codes.device, dtype=codes.dtype)[None, :, None]  # (1, T, 1)
        running = self._running_mix(codes, codes.cumsum(1) / seen, codes.cummax(1).values)  # (B, T, K)
        if not self.config.surprise:
            return running, None, []
        next_num, next_cat = self._next_event(outs[0], num)
        s = surprise(next_num, next_cat, num, cat)  # (B, T, S)
        parts = [running, s]
        if self.config.surprise_halflife > 0:
            parts.append(running_trend(s.detach(), self._decay()))  # (B, T, 2S), read, not trained through
        return torch.cat(parts, dim=-1), next_num, next_cat

    def _decay(self) -> float:
        """Weight of the previous event's surprise in the recent trend: 0.5 ** (1 / surprise_halflife)."""
        return 0.5 ** (1.0 / self.config.surprise_halflife)

    def _running_mix(self, last: torch.Tensor, mean: torch.Tensor, top: torch.Tensor) -> torch.Tensor:
        """The running code from the latest step code, the mean and the max of the step codes so far
        (each (..., K)): those ``config.pooling`` names, mixed when several."""
        pooled = [{"last": last, "mean": mean, "max": top}[kind] for kind in self.config.pooling]
        return pooled[0] if self.mix is None else self.mix(torch.cat(pooled, dim=-1))  # (..., K)

    def empty_carry(self, B: int, dtype: torch.dtype = torch.float32) -> dict:
        """The ``step`` carry of ``B`` entities before their first event."""
        L, H, K = len(self.lstm.forward_layers), self.config.hidden_size, self.config.latent_dim
        S = self.config.n_numeric + len(self.config.cardinalities)
        carry = {"h": torch.zeros(L, B, H, dtype=dtype), "c": torch.zeros(L, B, H, dtype=dtype),
                 "sum": torch.zeros(B, K, dtype=dtype), "max": torch.zeros(B, K, dtype=dtype),
                 "n": torch.zeros(B, 1, dtype=dtype), "first": torch.ones(B, dtype=torch.bool)}
        if self.config.surprise and self.config.surprise_halflife > 0:
            carry |= dict(zip(TREND_CARRY, (torch.zeros(B, S, dtype=dtype), torch.zeros(B, S, dtype=dtype),
                                            torch.zeros(B, 1, dtype=dtype))))
        return carry

    def step(self, num: torch.Tensor, cat: torch.Tensor, carry: dict):
        """``causal`` encoder, one event per entity: the code after it (B, code_dim) and the new carry,
        from the event's inputs num (B, F_num), cat (B, F_cat) and the carry after the entity's
        previous event (``empty_carry`` before a first one): ``running_codes`` step by step.

        carry: ``h``, ``c`` (layers, B, H) LSTM states; ``sum``, ``max`` (B, K) running sum and max of
        the step codes; ``n`` (B, 1) events so far; ``first`` (B,) True where there was no event before
        (those rows' ``sum``, ``max``, ``n`` restart and the next-event head reads ``start_state``);
        with a ``surprise_halflife``, ``trend_sum``, ``trend_sq`` (B, S) and ``trend_w`` (B, 1): the
        decayed sums of the surprise, its square and the weights (``running_trend``)."""
        B, H = num.shape[0], self.config.hidden_size
        x = self.step_input(num[:, None, :], cat[:, None, :])  # (B, 1, C)
        hs, cs = [], []
        for i, layer in enumerate(self.lstm.forward_layers):
            x, (h, c) = layer(x, (carry["h"][i:i + 1].contiguous(), carry["c"][i:i + 1].contiguous()))  # (B, 1, H)
            hs.append(h)
            cs.append(c)
        code = self._project([x], torch.ones(B, dtype=torch.long))[:, 0]  # (B, K)
        first = carry["first"][:, None]  # (B, 1)
        total = torch.where(first, code, carry["sum"] + code)  # (B, K)
        top = torch.where(first, code, torch.maximum(carry["max"], code))  # (B, K)
        n = torch.where(first, torch.ones_like(carry["n"]), carry["n"] + 1)  # (B, 1)
        running = self._running_mix(code, total / n, top)  # (B, K)
        new = {"h": torch.cat(hs), "c": torch.cat(cs), "sum": total, "max": top, "n": n,
               "first": torch.zeros(B, dtype=torch.bool)}
        if not self.config.surprise:
            return running, new
        before = torch.where(first, self.start_state.expand(B, H), carry["h"][-1])  # (B, H): state after t-1
        next_num, next_cat = self._predict_next(before, num)
        s = surprise(next_num, next_cat, num, cat)  # (B, S)
        if self.config.surprise_halflife <= 0:
            return torch.cat([running, s], dim=-1), new
        beta = self._decay()
        keep = (~first).to(s.dtype) * beta  # (B, 1): 0 where a first event starts the sums afresh
        new |= {"trend_sum": keep * carry["trend_sum"] + s, "trend_sq": keep * carry["trend_sq"] + s * s,
                "trend_w": keep * carry["trend_w"] + 1}
        trend = trend_from_sums(new["trend_sum"], new["trend_sq"], new["trend_w"])  # (B, 2S)
        return torch.cat([running, s, trend], dim=-1), new

    def _next_event(self, forward_states: torch.Tensor, num: torch.Tensor):
        """What the past expects of every event, from the forward states (B, T, H): numeric
        (B, T, F_num) and one (B, T, V_j) logit tensor per categorical column."""
        B, T, H = forward_states.shape  # batch, events (patch 1), hidden
        before = torch.cat([self.start_state.expand(B, 1, H), forward_states[:, :-1]], dim=1)  # (B, T, H): after t-1
        return self._predict_next(before, num)

    def _predict_next(self, before: torch.Tensor, num: torch.Tensor):
        """The next-event heads on the states before each event (..., H): numeric (..., F_num), or with
        ``surprise_scale`` (..., 2 F_num), the means then the log-scales; and one (..., V_j) logit
        tensor per categorical column."""
        next_num = self.next_numeric(before) if self.next_numeric is not None else num[..., :0]  # (..., F_num)
        return next_num, [head(before) for head in self.next_categorical]  # each (..., V_j)

    def _pool(self, codes: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Pool step codes (B, P, K) over each sequence's ``lengths`` valid steps: (B, K)."""
        B, T, _ = codes.shape  # batch, steps (patches), code channels
        lengths = lengths.to(codes.device)
        padded = exporting() or bool((lengths < T).any())  # unpadded: skip the masks (not in a graph)
        valid = valid_mask(lengths, T)[..., None]  # (B, T, 1)
        pooled = []
        for kind in self.config.pooling:
            if kind == "last":
                pooled.append(codes[torch.arange(B, device=codes.device), lengths - 1])  # (B, K)
            elif kind == "mean":
                pooled.append((codes * valid if padded else codes).sum(1) / lengths[:, None].to(codes.dtype))  # (B, K)
            elif kind == "max":
                pooled.append((codes.masked_fill(~valid, float("-inf")) if padded else codes).amax(1))  # (B, K)
            else:
                scores = self.attention(codes).masked_fill(~valid, float("-inf"))  # (B, T, 1)
                pooled.append((torch.softmax(scores, dim=1) * codes.masked_fill(~valid, 0.0)).sum(1))  # (B, K)
        return pooled[0] if self.mix is None else self.mix(torch.cat(pooled, dim=-1))  # (B, K)


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
    ordered = num.masked_fill(~valid, float("inf")).sort(dim=1).values  # (B, T, F), padding last
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


class SequenceDecoderNet(nn.Module):
    """Reconstructs every event from the code and its step's position relative to both ends; with
    ``patch > 1`` each decoder step emits the ``patch`` events of one patch."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.init = nn.Linear(config.pooled_dim, 2 * config.num_layers * config.hidden_size)
        self.lstm = nn.LSTM(config.pooled_dim + 2, config.hidden_size, num_layers=config.num_layers,
                            batch_first=True)
        p = config.patch
        self.numeric_head = nn.Linear(config.hidden_size, p * config.n_numeric) if config.n_numeric else None
        self.categorical_heads = nn.ModuleList(nn.Linear(config.hidden_size, p * card) for card in config.cardinalities)

    def forward(self, z: torch.Tensor, lengths: torch.Tensor, T: int):
        B, K = z.shape  # batch, latent
        L, H, p = self.config.num_layers, self.config.hidden_size, self.config.patch
        P = -(-T // p)  # decoder steps: patches
        steps = torch.arange(P, device=z.device, dtype=z.dtype)[None, :]  # (1, P)
        lens = patch_lengths(lengths.to(z.device), p).to(z.dtype)[:, None]  # (B, 1)
        scale = float(-(-self.config.max_len // p))
        position = torch.stack([steps.expand(B, P) / scale, (lens - 1 - steps) / scale], dim=-1)  # (B, P, 2)
        inp = torch.cat([z[:, None, :].expand(B, P, K), position], dim=-1)  # (B, P, K + 2)
        h0, c0 = torch.tanh(self.init(z)).view(B, 2, L, H).permute(1, 2, 0, 3).contiguous()  # 2 x (L, B, H)
        out, _ = self.lstm(inp, (h0, c0))  # (B, P, H)
        num_hat = unfold_patches(self.numeric_head(out), p, T) if self.numeric_head is not None \
            else out.new_zeros(B, T, 0)  # (B, T, F_num)
        cat_logits = [unfold_patches(head(out), p, T) for head in self.categorical_heads]  # each (B, T, V_j)
        return num_hat, cat_logits


class LSTMAutoencoder(nn.Module):
    """Encoder and decoder; ``forward`` returns the code and the reconstruction."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.encoder = SequenceEncoderNet(config)
        self.decoder = SequenceDecoderNet(config)

    def forward(self, num: torch.Tensor, cat: torch.Tensor, lengths: torch.Tensor):
        z, num_hat, cat_logits, _, _ = self.outputs(num, cat, lengths)
        return z, num_hat, cat_logits

    def outputs(self, num: torch.Tensor, cat: torch.Tensor, lengths: torch.Tensor):
        """Code (B, code_dim), reconstruction (numeric (B, T, F_num), logits per column) and the
        next-event predictions (``SequenceEncoderNet.encode``). The decoder reads the pooled part;
        the code leaves out the random-kernel features, which nothing here trains or reads."""
        z, next_num, next_cat = self.encoder.encode(num, cat, lengths, kernels=False)  # (B, code_dim - kernel_dim)
        num_hat, cat_logits = self.decoder(z[:, :self.config.pooled_dim], lengths, num.shape[1])
        return z, num_hat, cat_logits, next_num, next_cat
