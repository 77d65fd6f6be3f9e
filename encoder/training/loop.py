"""The training loop as small named steps, with callbacks for early stopping, checkpoints, progress.

``Trainer.fit_loop`` -> ``run_epoch`` -> ``train_step`` -> ``get_loss`` (+ ``get_contrastive_loss``).
Randomness (shuffling, corruption, crops, dropout) flows from one seeded ``torch.Generator`` plus
torch's global RNG, both saved in every checkpoint, so a resumed run ends with the same weights as
an uninterrupted one.
"""
from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from encoder.config import EncoderConfig
from encoder.nn.model import LSTMAutoencoder
from encoder.nn.surprise import next_numeric_parts
from encoder.sequences import EventArrays, gather_windows, step_weights, valid_mask
from encoder.training.distributed import all_reduce_gradients, all_reduce_sum, broadcast_parameters, rank_and_world
from encoder.training.losses import hierarchical_contrastive, reconstruction_errors
from encoder.training.noise import corrupt
from encoder.training.views import crop, overlapping_crops, shared_steps

EVAL_BATCH = 256


def crop_contrastive_loss(encoder, num, cat, lengths, gen: torch.Generator) -> torch.Tensor:
    """Hierarchical contrastive loss between the step codes of two overlapping crops of each sequence.

    Crops are drawn in steps (patches of ``encoder.config.patch`` events) and cut at patch
    boundaries, so step ``j`` of a view reads the same events as step ``j`` of the whole sequence
    shifted by the view's start."""
    p = encoder.config.patch
    pair = overlapping_crops(encoder.step_lengths(lengths), gen)  # in steps
    end1 = torch.minimum((pair.shared_start + pair.shared) * p, lengths)  # (B,) events
    end2 = torch.minimum(pair.end2 * p, lengths)  # (B,)
    codes1 = encoder.steps(*crop(num, cat, pair.start1 * p, end1 - pair.start1 * p))  # (B, T1, K)
    codes2 = encoder.steps(*crop(num, cat, pair.shared_start * p, end2 - pair.shared_start * p))  # (B, T2, K)
    return hierarchical_contrastive(*shared_steps(codes1, codes2, pair))


class Callback:
    """Hooks called by ``Trainer``; each may keep state that checkpoints save and restore."""

    def on_train_begin(self, trainer: "Trainer") -> None: ...
    def on_epoch_end(self, trainer: "Trainer", record: dict) -> None: ...
    def on_train_end(self, trainer: "Trainer") -> None: ...
    def state_dict(self) -> dict: return {}
    def load_state_dict(self, state: dict) -> None: ...


class EarlyStopping(Callback):
    """Stop when validation loss has not improved for ``patience`` epochs; restore the best weights."""

    def __init__(self, patience: int, min_delta: float = 1e-4):
        self.patience, self.min_delta = patience, min_delta
        self.best_loss, self.best_epoch, self.best_state = math.inf, -1, None

    def on_epoch_end(self, trainer, record):
        loss = record["val_loss"]
        if loss < self.best_loss - self.min_delta * abs(self.best_loss if math.isfinite(self.best_loss) else 1):
            self.best_loss, self.best_epoch = loss, record["epoch"]
            self.best_state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
        elif record["epoch"] - self.best_epoch >= self.patience:
            trainer.stop = True

    def on_train_end(self, trainer):
        if self.best_state is not None:
            trainer.model.load_state_dict(self.best_state)

    def state_dict(self):
        return {"best_loss": self.best_loss, "best_epoch": self.best_epoch, "best_state": self.best_state}

    def load_state_dict(self, state):
        self.best_loss, self.best_epoch, self.best_state = state["best_loss"], state["best_epoch"], state["best_state"]


class Checkpoint(Callback):
    """Write the full training state to ``path`` after every epoch (temporary name, then rename)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def on_epoch_end(self, trainer, record):
        tmp = self.path.with_name(self.path.name + ".tmp")
        torch.save(trainer.state_dict(), tmp)
        os.replace(tmp, self.path)


class ProgressBar(Callback):
    """A tqdm bar over epochs showing losses and throughput (hidden when stderr is not a terminal)."""

    def on_train_begin(self, trainer):
        self.bar = tqdm(total=trainer.config.training.epochs, initial=trainer.epoch, desc="encoder", unit="epoch",
                        file=sys.stderr, disable=None if trainer.rank == 0 else True, leave=False)

    def on_epoch_end(self, trainer, record):
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{record['train_loss']:.4f}", val=f"{record['val_loss']:.4f}",
                             seq_s=f"{record['sequences_per_s']:.0f}")

    def on_train_end(self, trainer):
        self.bar.close()


class Trainer:
    """Fits an ``LSTMAutoencoder`` on windows ending at ``train_ends`` (validated on ``val_ends``)."""

    def __init__(self, model: LSTMAutoencoder, config: EncoderConfig, arrays: EventArrays,
                 train_ends: np.ndarray, val_ends: np.ndarray, max_len: int, callbacks=()):
        self.model, self.config, self.arrays = model, config, arrays
        self.train_ends, self.val_ends, self.max_len = train_ends, val_ends, max_len
        self.callbacks = list(callbacks)
        self.rank, self.world = rank_and_world()  # under torchrun: this process's share of every batch
        self.gen = torch.Generator().manual_seed(config.training.seed + 7919 * self.rank)  # corruption, crops
        # the epoch's order must be the same in every process: its own generator when distributed
        self.order_gen = self.gen if self.world == 1 else torch.Generator().manual_seed(config.training.seed)
        if self.world > 1:
            broadcast_parameters(model)
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=config.training.lr, weight_decay=config.training.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="min", factor=0.5, patience=config.training.lr_patience)
        n = min(len(train_ends), config.training.max_sequences_per_epoch)
        self.batch_size = max(1, min(config.training.batch_size, math.ceil(n / config.training.min_batches_per_epoch)))
        self.epoch, self.history, self.stop = 0, [], False

    # -- steps
    def get_loss(self, clean_num, clean_cat, lengths, num, cat) -> torch.Tensor:
        """Mean per-sequence reconstruction error of the clean batch from (possibly corrupted) inputs,
        plus ``next_event_weight`` x the error of predicting each clean event from its (corrupted)
        past when the encoder has a next-event head (``surprise``)."""
        z, num_hat, cat_logits, next_num, next_cat = self.model.outputs(num, cat, lengths)
        weights = step_weights(lengths, clean_num.shape[1], self.config.training.recency_halflife)  # (B, T)
        loss = reconstruction_errors(num_hat, cat_logits, clean_num, clean_cat, weights,
                                     self.config.training.categorical_weight).mean()
        if next_num is not None:
            mean, log_scale = next_numeric_parts(next_num, clean_num.shape[-1])  # with a scale: Gaussian likelihood
            loss = loss + self.config.training.next_event_weight * reconstruction_errors(
                mean, next_cat, clean_num, clean_cat, weights, self.config.training.categorical_weight, log_scale).mean()
        return loss

    def get_contrastive_loss(self, num, cat, lengths) -> torch.Tensor:
        return crop_contrastive_loss(self.model.encoder, num, cat, lengths, self.gen)

    def train_step(self, ends: np.ndarray) -> tuple[float, float]:
        """One optimiser step on the windows ending at ``ends``: denoising reconstruction, plus
        ``contrastive_weight`` x the contrastive loss of two clean overlapping crops. Returns both
        (under torchrun: this process's share of the batch mean; ``run_epoch`` sums the shares)."""
        share = ends[self.rank::self.world]
        weight = len(share) / len(ends)  # 1 in one process
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = contrastive = torch.zeros(())
        if len(share):
            num, cat, lengths = gather_windows(self.arrays, share, self.max_len)
            valid = valid_mask(lengths, num.shape[1])
            noisy_num, noisy_cat = corrupt(num, cat, valid, self.config.noise, self.gen)
            loss = self.get_loss(num, cat, lengths, noisy_num, noisy_cat)
            if self.config.training.contrastive_weight > 0:
                contrastive = self.get_contrastive_loss(num, cat, lengths)
            if weight != 1:
                loss, contrastive = loss * weight, contrastive * weight
            (loss + self.config.training.contrastive_weight * contrastive).backward()
        if self.world > 1:
            all_reduce_gradients(self.model)
        if self.config.training.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.training.grad_clip)
        self.optimizer.step()
        return float(loss.detach()), float(contrastive.detach())

    @torch.no_grad()
    def validate(self) -> float:
        """Mean clean reconstruction error over the validation windows (no corruption, eval mode)."""
        self.model.eval()
        total, count = 0.0, 0
        val_ends = self.val_ends[self.rank::self.world]  # summed over processes below
        for i in range(0, len(val_ends), EVAL_BATCH):
            ends = val_ends[i:i + EVAL_BATCH]
            num, cat, lengths = gather_windows(self.arrays, ends, self.max_len)
            total += float(self.get_loss(num, cat, lengths, num, cat)) * len(ends)
            count += len(ends)
        if self.world > 1:
            total, count = all_reduce_sum(torch.tensor([total, count], dtype=torch.float64)).tolist()
        return total / max(count, 1)

    def run_epoch(self) -> dict:
        """Shuffle (and cap) the training windows, step through them in batches, validate."""
        start = time.perf_counter()
        order = torch.randperm(len(self.train_ends), generator=self.order_gen).numpy()
        ends = self.train_ends[order[: self.config.training.max_sequences_per_epoch]]
        losses = np.array([self.train_step(ends[i:i + self.batch_size])
                           for i in range(0, len(ends), self.batch_size)])  # (batches, 2)
        if self.world > 1:  # each process returned its share of every batch mean
            losses = all_reduce_sum(torch.from_numpy(losses)).numpy()
        sizes = np.diff(np.r_[np.arange(0, len(ends), self.batch_size), len(ends)])  # (batches,)
        train_loss, train_contrastive = (losses * sizes[:, None]).sum(0) / len(ends)
        train_seconds = time.perf_counter() - start
        val_loss = self.validate() if len(self.val_ends) else train_loss
        self.scheduler.step(val_loss)
        return {"epoch": self.epoch, "train_loss": float(train_loss), "val_loss": val_loss,
                "train_contrastive": float(train_contrastive),
                "lr": self.optimizer.param_groups[0]["lr"], "seconds": time.perf_counter() - start,
                "sequences_per_s": len(ends) / train_seconds}

    def fit_loop(self) -> "Trainer":
        """Train until ``config.training.epochs`` or an early stop; callbacks see every epoch."""
        for cb in self.callbacks:
            cb.on_train_begin(self)
        while self.epoch < self.config.training.epochs and not self.stop:
            record = self.run_epoch()
            self.history.append(record)
            self.epoch += 1
            for cb in self.callbacks:
                cb.on_epoch_end(self, record)
        for cb in self.callbacks:
            cb.on_train_end(self)
        return self

    # -- checkpoints
    def state_dict(self) -> dict:
        return {"config": self.config.to_dict(), "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "gen": self.gen.get_state(),
                "torch_rng": torch.get_rng_state(), "epoch": self.epoch, "stop": self.stop,
                "history": self.history, "callbacks": [cb.state_dict() for cb in self.callbacks]}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.gen.set_state(state["gen"])
        torch.set_rng_state(state["torch_rng"])
        self.epoch, self.stop, self.history = state["epoch"], state["stop"], list(state["history"])
        for cb, cb_state in zip(self.callbacks, state["callbacks"]):
            cb.load_state_dict(cb_state)
