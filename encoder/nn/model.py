"""The LSTM autoencoder assembled from its parts; forward passes only. Its frozen config: ``config``.

The parts, one file each: ``lstm`` (step input, patches, the masked LSTM), ``conv`` (the dilated
convolution branch), ``statistics`` (segment maxima, summary statistics), ``surprise`` (the
next-event surprise and its trend), ``kernels`` (MiniRocket's random kernels). ``blocks`` names
the code they make."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from encoder.nn.config import ModelConfig
from encoder.nn.conv import DilatedConvBranch
from encoder.nn.kernels import RandomKernelFeatures
from encoder.nn.lstm import MaskedLSTM, StepInput, fold_patches, patch_lengths, unfold_patches
from encoder.nn.statistics import segment_max, summary_statistics
from encoder.nn.surprise import TREND_CARRY, latest_trend, running_trend, surprise, trend_from_sums
from encoder.sequences import exporting, valid_mask


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
