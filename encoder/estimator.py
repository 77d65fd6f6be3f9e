"""SequenceEncoder: the sklearn-style estimator (fit / transform / save / load) the commands call."""
from __future__ import annotations

import contextlib
import copy
import datetime as dt
import hashlib
import json
import time
import warnings
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_save
from sklearn.base import BaseEstimator, TransformerMixin

from encoder import events as ev
from encoder.blocks import CodeBlock, block_columns, code_blocks, parse_blocks
from encoder.config import ENCODE_BATCH, LENGTH_GROUP, RUNNING_CHUNK_BYTES, EncoderConfig
from encoder.fit_steps import fit_kernels, initial_network, settle_segments
from encoder.io.artifacts import ENCODER_FORMAT_VERSION as FORMAT_VERSION
from encoder.io.artifacts import artifact_path, library_versions, read_encoder_manifest, write_json
from encoder.io.atomic import atomic_output, check_apart, column_matrix, flat_columns, write_parquet_stream
from encoder.io.errors import ArtifactError, InputError, NotFitted, SlowPathWarning
from encoder.nn.config import ModelConfig, embedding_dim_for
from encoder.nn.model import LSTMAutoencoder
from encoder.prepared import (ArraysInProgress, PreparedEvents, columns_and_kinds, prepare_events, source_name,
                              warn_truncation)
from encoder.preprocessing import Preprocessor
from encoder.sequences import EventArrays, by_length, entity_end_rows, gather_windows, step_weights, valid_mask
from encoder.threads import one_thread_each
from encoder.training.loop import Checkpoint, EarlyStopping, ProgressBar, Trainer
from encoder.training.losses import reconstruction_errors
from encoder.training.plot import plot_history

WEIGHTS_FILE = "model.safetensors"
SLOW_PATH_EVENTS = 100_000  # event codes from an entity encoder beyond this many: say it is the slow way


class SequenceEncoder(TransformerMixin, BaseEstimator):
    """Denoising, masking-aware LSTM autoencoder over event sequences.

    Parameters
    ----------
    id_col, time_col : str
        Entity key and event time columns.
    label_col : str, optional
        Target column; never a feature, carried into the latents.
    config : EncoderConfig, optional
        Preprocessing, architecture and training choices (defaults if omitted).
    numeric, categorical, drop : sequence of str
        Overrides of the feature-type inference.

    Examples
    --------
    >>> enc = SequenceEncoder("account", "ts", "is_fraud").fit("events.parquet")  # doctest: +SKIP
    >>> latents = enc.transform("events.parquet")  # DataFrame: account, is_fraud, z_0..z_31  # doctest: +SKIP
    """

    def __init__(self, id_col: str, time_col: str, label_col: str | None = None,
                 config: EncoderConfig | None = None, numeric=(), categorical=(), drop=()):
        self.id_col = id_col
        self.time_col = time_col
        self.label_col = label_col
        self.config = config
        self.numeric = numeric
        self.categorical = categorical
        self.drop = drop

    # ------------------------------------------------------------------ fit
    def fit(self, events, y=None, *, checkpoint: str | Path | None = None, resume: bool = False,
            callbacks=()) -> "SequenceEncoder":
        """Fit preprocessing and the autoencoder on ``events`` (a path or a DataFrame).

        Rules: rows are ordered by (id, time), ties in file order. A sequence is the latest
        ``max_len`` events of an entity (``unit="entity"``) or up to and including each event
        (``unit="event"``), left-aligned and padded at the tail; the LSTM reads packed sequences so
        padding is never seen, and the loss counts valid steps only. Scalers and vocabularies are
        fitted on the training entities only (a seeded ``val_fraction`` of entities is held out for
        early stopping). Missing numerics become 0 plus a missing-indicator channel; missing
        categories are a category; unseen categories map to "unknown", and so do values seen in a
        single entity (identities such as a device), whose change shows in a per-column "new for
        this entity" channel instead. For ``unit="event"`` the loss weighs steps by recency
        (``recency_halflife``, 3 steps by default), so an event's code is about it and its recent
        past; for ``unit="entity"`` a contrastive term on overlapping crops trains the step codes
        too (see ``EncoderConfig``). Corruption (Gaussian noise, feature and step dropout, unknown
        replacement) is applied in training steps only.

        ``checkpoint`` is a file written after every epoch; ``resume=True`` continues from it.
        """
        cfg = self.config or EncoderConfig()
        source = source_name(events)
        columns, kinds = columns_and_kinds(events)
        schema = ev.infer_schema(source, columns, kinds, self.id_col, self.time_col, self.label_col,
                                 ev.split_names(self.numeric), ev.split_names(self.categorical),
                                 ev.split_names(self.drop))
        data = prepare_events(events, schema, training=True)

        n_entities = int(data.codes[-1]) + 1
        rng = np.random.default_rng(cfg.training.seed)
        n_val = 0 if n_entities < 2 else min(n_entities - 1, max(1, round(cfg.training.val_fraction * n_entities)))
        n_val = n_val if cfg.training.val_fraction > 0 else 0
        is_val_entity = np.zeros(n_entities, dtype=bool)
        is_val_entity[rng.permutation(n_entities)[:n_val]] = True
        train_rows = ~is_val_entity[data.codes]

        sorted_frame = data.frame.iloc[data.order].reset_index(drop=True)
        train_codes = data.codes[train_rows]
        pre = Preprocessor(cfg.data, schema.numeric, schema.categorical).fit(
            sorted_frame[train_rows], data.times[train_rows], ev.entity_starts(train_codes))
        num, cat = pre.transform(sorted_frame, data.times, data.starts)
        del sorted_frame
        arrays = EventArrays(num, cat, data.starts)

        sizes = np.bincount(data.codes)  # every entity's events, validation entities too: none is cut unseen
        cfg = cfg.resolved(sizes)
        max_len = cfg.data.max_len
        truncated = warn_truncation(sizes, max_len, cfg.data.unit, source)
        ends = entity_end_rows(data.starts) if cfg.data.unit == "entity" else np.arange(len(data.codes))
        train_ends = ends[train_rows[ends]]
        val_ends = ends[~train_rows[ends]]
        if len(val_ends) > cfg.training.max_sequences_per_epoch:
            val_ends = np.sort(rng.choice(val_ends, cfg.training.max_sequences_per_epoch, replace=False))

        emb_dims = tuple(int(cfg.network.embedding_dims.get(c, embedding_dim_for(card)))
                         for c, card in zip(schema.categorical, pre.cardinalities))
        mcfg = ModelConfig(n_numeric=num.shape[1], cardinalities=tuple(pre.cardinalities),
                           embedding_dims=emb_dims, hidden_size=cfg.network.hidden_size, num_layers=cfg.network.num_layers,
                           bidirectional=cfg.network.bidirectional,
                           pooling=tuple(cfg.network.pooling), latent_dim=cfg.network.latent_dim, dropout=cfg.network.dropout,
                           max_len=max_len, patch=cfg.data.patch, surprise=bool(cfg.blocks.surprise),
                           causal=bool(cfg.network.causal),
                           surprise_halflife=float(cfg.blocks.surprise_halflife) if cfg.blocks.surprise else 0.0,
                           surprise_scale=bool(cfg.blocks.surprise and cfg.blocks.surprise_scale),
                           summary_stats=bool(cfg.blocks.summary_stats), conv_dim=int(cfg.network.conv_dim),
                           conv_depth=int(cfg.network.conv_depth) if cfg.network.conv_dim else 0, conv_channels=int(cfg.network.conv_channels),
                           segments=int(cfg.blocks.segments), kernel_features=int(cfg.blocks.kernel_features))
        model = initial_network(mcfg, cfg.training.seed)
        early = EarlyStopping(cfg.training.patience)
        cbs = [early, *callbacks, ProgressBar()]
        if checkpoint is not None:
            cbs.insert(1, Checkpoint(checkpoint))
        trainer = Trainer(model, cfg, arrays, train_ends, val_ends, max_len, cbs)
        if resume:
            trainer.load_state_dict(self._load_checkpoint(checkpoint, cfg))
        started = time.perf_counter()
        trainer.fit_loop()
        if model.encoder.kernels is not None:
            fit_kernels(model.encoder.kernels, arrays, train_ends if len(train_ends) else ends, max_len, cfg.training.seed)
        segments_rule = None
        if (self.config or EncoderConfig()).blocks.segments is None and cfg.blocks.segments:  # the unit's provisional default
            cfg, mcfg, model, segments_rule = settle_segments(cfg, model.eval(), arrays, ends, rng)

        self.schema_, self.config_, self.model_config_ = schema, cfg, mcfg
        self.preprocessor_, self.model_ = pre, model.eval()
        self.history_ = pd.DataFrame(trainer.history)
        self.training_ = {
            "epochs_run": trainer.epoch, "best_epoch": early.best_epoch,
            "best_val_loss": early.best_loss if trainer.history else None,
            "final_train_loss": trainer.history[-1]["train_loss"] if trainer.history else None,
            "n_entities": n_entities, "n_val_entities": int(n_val), "n_events": len(data.codes),
            "n_train_sequences": int(len(train_ends)), "n_val_sequences": int(len(val_ends)),
            "batch_size": trainer.batch_size, "seconds": round(time.perf_counter() - started, 3),
            "truncation": truncated, "segments": segments_rule, "untrained": trainer.epoch == 0,
        }
        self.encoder_id_ = None
        return self

    @staticmethod
    def _load_checkpoint(checkpoint, cfg: EncoderConfig) -> dict:
        if checkpoint is None or not Path(checkpoint).exists():
            raise InputError(f"no checkpoint to resume from at '{checkpoint}'")
        state = torch.load(checkpoint, weights_only=True)
        if state.get("config") != cfg.to_dict():
            raise InputError(f"checkpoint '{checkpoint}' was written with other options; "
                             "run again without --resume")
        return state

    def untrained_twin(self) -> "SequenceEncoder":
        """This encoder's control: everything fitted without gradient descent (preprocessing,
        vocabularies, the segment decision, the random kernels' channels and biases, every buffer)
        kept as it is, and the network's weights left at the seeded initialisation its training
        started from. Its code differs from this one's in the trained blocks only
        (``blocks.TRAINED``); the untrained blocks are equal column for column."""
        self._check_fitted()
        twin = copy.copy(self)
        with torch.random.fork_rng(devices=[]):  # the caller's generator is left as it was
            net = initial_network(self.model_config_, self.config_.training.seed)
        trained_buffers = dict(self.model_.named_buffers())
        for name, buf in net.named_buffers():
            buf.copy_(trained_buffers[name])
        twin.model_ = net.eval()
        twin.training_ = {**self.training_, "untrained": True, "twin_of": self.encoder_id, "epochs_run": 0,
                          "best_epoch": -1, "best_val_loss": None, "final_train_loss": None}
        twin.history_ = self.history_.iloc[:0]
        twin.encoder_id_ = None
        twin.__dict__.pop("_net64", None)
        return twin

    @property
    def untrained_(self) -> bool:
        """Whether the network's weights are its seeded initialisation (``--epochs 0`` or a twin)."""
        self._check_fitted()
        return bool(self.training_.get("untrained", False))

    # ------------------------------------------------------------------ encode
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFitted("this SequenceEncoder is not fitted yet; call fit or load first")

    def prepare(self, events, keep_frame: bool = False, unit: str | None = None, source: str | None = None,
                background: bool = False) -> tuple[PreparedEvents, EventArrays | ArraysInProgress]:
        """Read, validate, order and preprocess ``events`` once; the raw feature columns are dropped
        afterwards unless ``keep_frame`` (callers that build other features from them). Warns
        (``TruncationWarning``) when sequences of ``unit`` are longer than ``max_len``. ``background``:
        return once the table is read and ordered, and preprocess it on a thread of its own while the
        caller codes (``ArraysInProgress``; entity codes only)."""
        self._check_fitted()
        data = prepare_events(events, self.schema_, training=False, source=source)
        warn_truncation(np.bincount(data.codes), self.max_len_, unit or self.config_.data.unit, data.source)
        sorted_frame = data.frame.iloc[data.order].reset_index(drop=True)
        if background:
            if not keep_frame:
                data.frame = data.frame.iloc[:0]  # the sorted copy is all that is read from now on
            return data, ArraysInProgress(sorted_frame, data.times, data.starts, self.preprocessor_.transform)
        num, cat = self.preprocessor_.transform(sorted_frame, data.times, data.starts)
        if not keep_frame:
            data.frame = data.frame.iloc[:0]  # free the raw columns: only the arrays are needed now
        return data, EventArrays(num, cat, data.starts)

    def iter_batches(self, events, unit: str | None = None, batch_size: int = ENCODE_BATCH,
                     reconstruction_error: bool = False, blocks=None) -> Iterator[pd.DataFrame]:
        """Latent codes in batches of ``batch_size`` sequences, as DataFrames in output order.

        ``unit="entity"``: one row per entity, sorted by id. ``unit="event"``: one row per input
        event, in input order, each coded from that event and its entity's earlier events only.
        Columns: keys, the label (if present), ``z_0..z_{K-1}`` (float32), and ``recon_error``
        when asked. ``blocks`` (names of ``code_blocks()``, e.g. ``"pooled,segments"``, ``"learned"``
        or ``"-kernels"``; None: all) keeps those blocks' columns only, under their usual names, and
        computes no random-kernel features when their block is left out.
        """
        self._check_encode_options(unit, batch_size, blocks)
        with self._prepared(events, unit) as (data, arrays):
            yield from self.iter_prepared(data, arrays, unit, batch_size, reconstruction_error, blocks)

    @contextlib.contextmanager
    def _prepared(self, events, unit: str | None):
        """``prepare`` for one encode of ``unit`` codes: entity codes are coded while the table is
        preprocessed (``ArraysInProgress``, stopped on leaving)."""
        data, arrays = self.prepare(events, unit=unit, background=(unit or self.config_.data.unit) == "entity")
        try:
            yield data, arrays
        finally:
            if isinstance(arrays, ArraysInProgress):
                arrays.close()

    def _check_encode_options(self, unit: str | None, batch_size: int, blocks=None) -> None:
        self._check_fitted()
        parse_blocks(blocks, self.code_blocks())
        if (unit or self.config_.data.unit) not in ("entity", "event"):
            raise InputError(f"unit '{unit}' is not one of entity, event")
        if batch_size < 1:
            raise InputError(f"batch size must be positive, got {batch_size}")

    def iter_prepared(self, data: PreparedEvents, arrays: EventArrays, unit: str | None = None,
                      batch_size: int = ENCODE_BATCH, reconstruction_error: bool = False,
                      blocks=None) -> Iterator[pd.DataFrame]:
        """``iter_batches`` over a table already read by ``prepare``."""
        for columns in self._iter_columns(data, arrays, unit, batch_size, reconstruction_error, blocks):
            yield pd.DataFrame(flat_columns(columns))

    def _iter_columns(self, data: PreparedEvents, arrays: EventArrays | ArraysInProgress, unit: str | None,
                      batch_size: int, reconstruction_error: bool, blocks=None) -> Iterator[dict]:
        """Each batch's output columns in order: keys and label as 1-d arrays, the ``z_*`` of ``blocks``
        as one (K', B) matrix keyed by the tuple of their names (``atomic.flat_columns`` spreads it),
        then ``recon_error``."""
        unit = unit or self.config_.data.unit
        if unit != "entity" and isinstance(arrays, ArraysInProgress):
            raise ValueError("arrays in progress serve entity codes only: prepare event codes with background=False")
        schema, layout = self.schema_, self.code_blocks()
        chosen = parse_blocks(blocks, layout)
        names = block_columns(layout, chosen)
        keep = None if len(names) == self.model_config_.code_dim else torch.tensor([int(c[2:]) for c in names])
        with_kernels = "kernels" in chosen  # the kernels are the code's last block: without them, a prefix
        if unit == "entity":
            ends_all = entity_end_rows(data.starts)
            key_rows = data.order[ends_all]  # input row of each entity's last event
        else:
            inverse = np.empty_like(data.order)
            inverse[data.order] = np.arange(len(data.order))
            ends_all, key_rows = inverse, np.arange(len(data.order))
        model = self.model_.eval()
        one_pass = unit == "event" and self.model_config_.causal and not reconstruction_error
        if unit == "event" and not self.model_config_.causal and len(ends_all) > SLOW_PATH_EVENTS:
            kernels = f" and {self.model_config_.kernel_dim} random-kernel features" if self.model_config_.kernel_dim else ""
            warnings.warn(f"this encoder codes entities: each of the {len(ends_all)} event codes re-reads its window "
                          f"of up to {self.max_len_} events{kernels}, several times slower than an encoder trained with "
                          "--unit event (one causal pass per entity); train one for event codes at scale",
                          SlowPathWarning, stacklevel=4)

        def keys(rows):  # the key and label columns of these input rows
            out = {schema.id_col: data.ids.iloc[rows].to_numpy()}
            if unit == "event":
                out[schema.time_col] = data.time_raw.iloc[rows].to_numpy()
            if data.labels is not None:
                out[schema.label_col] = data.labels.iloc[rows].to_numpy()
            return out

        def with_codes(out, z):  # z (B, K) float32 codes -> out with the chosen blocks' (K', B) matrix
            codes = column_matrix(len(names), len(z))  # (K', B): column k is row k
            codes[:] = (z if keep is None else z[:, keep.numpy()]).T
            out[tuple(names)] = codes
            return out

        if one_pass and bool((np.diff(data.order) > 0).all()):  # input in (id, time) order: one stretch at a time
            for first, chunk in self.running_code_chunks(arrays, batch_size):
                for j in range(0, len(chunk), batch_size):
                    rows = np.arange(first + j, first + min(j + batch_size, len(chunk)))  # input = sorted rows
                    yield with_codes(keys(rows), chunk[j:j + batch_size])
            return
        if one_pass:  # rows in any order: every code is held until its row is written
            all_codes = self.running_codes(arrays, batch_size)  # (N, K) in sorted order
            for i in range(0, len(ends_all), batch_size):
                yield with_codes(keys(key_rows[i:i + batch_size]), all_codes[ends_all[i:i + batch_size]])
            return
        net = self.event_net() if unit == "event" and not reconstruction_error else None  # once, not per worker

        def learned(num, cat, lengths):  # the code without the random-kernel features: (B, K - kernel_dim)
            return model.encoder.encode(num, cat, lengths, kernels=False)[0]

        def batch_columns(item):  # the output columns of the batch of sequences from the i-th on
            i, out = item  # out: the batch's key columns, read from pandas in the calling thread
            ends = ends_all[i:i + batch_size]
            with torch.inference_mode():  # per thread: each worker enters its own
                if unit == "entity":  # ascending ends: the batch's entities are one stretch of rows
                    first = int(arrays.starts[ends[0]])
                    num, cat, lengths = gather_windows(arrays.rows(first, int(ends[-1]) + 1), ends - first,
                                                       self.max_len_)
                else:
                    num, cat, lengths = gather_windows(arrays, ends, self.max_len_)
                if reconstruction_error:
                    z, num_hat, cat_logits = model(num, cat, lengths)  # (B, code_dim - kernel_dim)
                    if with_kernels and model.encoder.kernels is not None:
                        z = torch.cat([z, model.encoder.kernels(num, lengths)], dim=-1)  # (B, code_dim)
                    weights = step_weights(lengths, num.shape[1], self.config_.training.recency_halflife)
                    err = reconstruction_errors(num_hat, cat_logits, num, cat, weights,
                                                self.config_.training.categorical_weight)
                elif unit == "event":
                    z = by_length(net, num.double(), cat, lengths, LENGTH_GROUP).float()  # (B, K), float64 as online
                elif keep is None and model.encoder.kernels is not None:  # every block: the kernels fill
                    z = by_length(learned, num, cat, lengths, LENGTH_GROUP)  # the code's last rows, no copy
                    codes = column_matrix(self.model_config_.code_dim, len(ends))  # (K, B)
                    codes[:z.shape[1]] = z.numpy().T
                    model.encoder.kernels.features_into(num, lengths, codes[z.shape[1]:].T)  # (B, kernel_dim) view
                    out[tuple(names)] = codes
                    return out
                else:
                    z = by_length(learned if not with_kernels else model.encoder, num, cat, lengths,
                                  LENGTH_GROUP)  # (B, K) or a prefix
            if keep is not None:
                z = z[:, keep]  # (B, K'): the chosen blocks
            codes = column_matrix(z.shape[1], z.shape[0])  # (K, B): column k is codes[k], contiguous
            codes[:] = z.numpy().T
            out[tuple(names)] = codes
            if reconstruction_error:
                out["recon_error"] = err.numpy().astype(np.float32)
            return out

        # batches on torch's thread count of workers, one core each (``encoder.threads``)
        batches = ((i, keys(key_rows[i:i + batch_size])) for i in range(0, len(ends_all), batch_size))
        yield from one_thread_each(batch_columns, batches, torch.get_num_threads())

    def event_net(self):
        """The encoder network in float64, for event codes: causal ones (``running_codes`` here, one
        step per event in online scoring) and windowed ones (a batch of windows here, one window per
        request online). Each pair computes the same values in different orders or batch shapes; in
        float64 their differences (about 1e-16) vanish when the codes are rounded to float32, so both
        paths give the classifier the same float32 codes, bit for bit, and a tree split never falls
        between them (in float32 they differed by about 1e-7, and scores by up to 0.004)."""
        self._check_fitted()
        if getattr(self, "_net64", (None, None))[0] is not self.model_:
            self._net64 = (self.model_, copy.deepcopy(self.model_.encoder).double().eval())
        return self._net64[1]

    def running_codes(self, arrays: EventArrays, batch_size: int = ENCODE_BATCH) -> np.ndarray:
        """A ``causal`` encoder's code after every event, (N, K) float32 in sorted row order: one
        pass of the LSTM (in float64: ``event_net``) over each entity's whole history (every event,
        not a ``max_len`` window)."""
        codes = np.empty((len(arrays), self.model_config_.code_dim), dtype=np.float32)
        for first, chunk in self.running_code_chunks(arrays, batch_size):
            codes[first:first + len(chunk)] = chunk
        return codes

    def running_code_chunks(self, arrays: EventArrays,
                            batch_size: int = ENCODE_BATCH) -> Iterator[tuple[int, np.ndarray]]:
        """``running_codes`` a stretch of whole entities at a time, in sorted row order: (first row,
        (rows, K) float32 codes), about ``RUNNING_CHUNK_BYTES`` of codes each. Within a stretch,
        entities are batched by size, about ``batch_size * max_len`` events a batch, so memory is
        bounded however many events and however long the histories."""
        self._check_fitted()
        if not self.model_config_.causal:
            raise InputError("running_codes needs an encoder trained with causal = true")
        ends = entity_end_rows(arrays.starts)
        K = self.model_config_.code_dim
        span = max(batch_size * self.max_len_, RUNNING_CHUNK_BYTES // (4 * K))  # events a stretch, about
        e = 0
        while e < len(ends):
            first = int(arrays.starts[ends[e]])
            stop = max(e + 1, int(np.searchsorted(ends, first + span - 1, side="right")))  # whole entities
            yield first, self._running_stretch(arrays, ends[e:stop], batch_size)
            e = stop

    def _running_stretch(self, arrays: EventArrays, ends: np.ndarray, batch_size: int) -> np.ndarray:
        """The running codes of the consecutive entities ending at ``ends``: (their rows, K)."""
        first = int(arrays.starts[ends[0]])
        sizes = ends - arrays.starts[ends] + 1
        order = np.argsort(sizes, kind="stable")  # similar lengths together: little padding
        budget = batch_size * self.max_len_
        codes = np.empty((int(ends[-1]) + 1 - first, self.model_config_.code_dim), dtype=np.float32)
        net = self.event_net()
        i = 0
        with torch.inference_mode():
            while i < len(order):
                n = max(1, min(batch_size, budget // int(sizes[order[i]])))  # sizes grow along order
                while n > 1 and n * int(sizes[order[min(i + n, len(order)) - 1]]) > budget:
                    n //= 2
                batch = order[i:i + n]
                num, cat, lengths = gather_windows(arrays, ends[batch], int(sizes[batch].max()))
                z = net.running_codes(num.double(), cat, lengths)[0].float()  # (B, T, K)
                valid = valid_mask(lengths, num.shape[1]).numpy()  # (B, T)
                rows = arrays.starts[ends[batch]][:, None] - first + np.arange(num.shape[1])[None, :]  # (B, T)
                codes[rows[valid]] = z.numpy()[valid]
                i += n
        return codes

    def transform(self, events, unit: str | None = None, batch_size: int = ENCODE_BATCH,
                  reconstruction_error: bool = False, blocks=None) -> pd.DataFrame:
        """All latent codes of ``events`` as one DataFrame (see ``iter_batches`` for the layout)."""
        frames = list(self.iter_batches(events, unit, batch_size, reconstruction_error, blocks))
        return pd.concat(frames, ignore_index=True)

    def encode_to_parquet(self, events, out: str | Path, unit: str | None = None,
                          batch_size: int = ENCODE_BATCH, overwrite: bool = False, blocks=None) -> int:
        """Stream latent codes to a Parquet file (atomically); returns the number of rows written.
        The file's metadata records the encoder, the unit, the key columns and the blocks written."""
        self._check_encode_options(unit, batch_size, blocks)
        check_apart(out, events)
        unit = unit or self.config_.data.unit
        keys = [self.schema_.id_col] + ([self.schema_.time_col] if unit == "event" else [])
        layout = self.code_blocks()
        chosen = parse_blocks(blocks, layout)
        meta = {"encoder_id": self.encoder_id, "unit": unit, "keys": json.dumps(keys), "blocks": json.dumps(chosen),
                "untrained": json.dumps(self.untrained_)}
        # PPV features take few values each (a count of steps over a length): dictionary-encoded
        repeating = tuple(block_columns(layout, {"kernels"} & set(chosen)))

        def columns():  # a generator: the input is read once the output is known to be writable
            with self._prepared(events, unit) as (data, arrays):
                yield from self._iter_columns(data, arrays, unit, batch_size, False, blocks)
        return write_parquet_stream(columns(), out, meta, overwrite, repeating)

    @property
    def max_len_(self) -> int:
        return self.config_.data.max_len

    @property
    def encoder_id(self) -> str:
        """sha256 of the weights file's bytes (the same whether saved yet or not)."""
        self._check_fitted()
        if self.encoder_id_ is None:
            self.encoder_id_ = hashlib.sha256(self._weights_bytes()).hexdigest()
        return self.encoder_id_

    def _weights_bytes(self) -> bytes:
        return safetensors_save({k: v.contiguous() for k, v in self.model_.state_dict().items()})

    # ------------------------------------------------------------------ persistence
    def manifest(self, preset: dict | None = None) -> dict:
        """What the encoder directory records; ``preset``: the options a command applied on its own
        (``pipeline compare``'s for the event unit), named as given."""
        self._check_fitted()
        return {
            "format": "seqae-encoder", "format_version": FORMAT_VERSION, "encoder_id": self.encoder_id,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "schema": self.schema_.to_dict(), "unit": self.config_.data.unit, "max_len": self.max_len_,
            "code_width": self.model_config_.code_dim,
            "code_blocks": {b.name: {"width": b.width, "trained": b.trained,
                                    "columns": [b.columns[0], b.columns[-1]] if b.width else []}
                            for b in self.code_blocks()},
            "untrained": self.untrained_, "code_layout": self.code_layout(),
            "config": self.config_.to_dict(), "preset": dict(preset or {}),
            "model_config": self.model_config_.to_dict(), "preprocessing": self.preprocessor_.state_dict(),
            "numeric_channels": self.preprocessor_.numeric_channels, "training": self.training_,
            "versions": library_versions(), "weights": WEIGHTS_FILE,
        }

    def code_blocks(self) -> list[CodeBlock]:
        """The code's named blocks in order (``blocks.code_blocks``), empty ones included."""
        self._check_fitted()
        kernels = self.model_.encoder.kernels
        return code_blocks(self.model_config_, self.preprocessor_.numeric_channels, self.schema_.categorical,
                           kernels.names() if kernels is not None else [])

    def code_layout(self) -> dict:
        """The manifest's view of ``code_blocks``: ``pooled`` lists every pooled channel (the LSTM's,
        then ``conv``, the convolution branch's); ``segments``, ``surprise``, ``summary`` and
        ``kernels`` map each of their columns to its label (``segment 1/4:z_0``, ``surprise:amount``,
        ``mean:x0``, ``ppv:d1/k0/b0``)."""
        b = {block.name: block for block in self.code_blocks()}
        named = {name: dict(zip(b[name].columns, b[name].labels)) for name in ("segments", "surprise", "summary", "kernels")}
        return {"pooled": [*b["pooled"].columns, *b["conv"].columns], "conv": list(b["conv"].columns), **named}

    def save(self, path: str | Path, overwrite: bool = False, preset: dict | None = None) -> Path:
        """Write the encoder directory (manifest, weights, history, loss plot) atomically; ``preset``
        as ``manifest``'s."""
        self._check_fitted()
        with atomic_output(path, overwrite, directory=True) as tmp:
            weights = self._weights_bytes()
            (tmp / WEIGHTS_FILE).write_bytes(weights)
            self.encoder_id_ = hashlib.sha256(weights).hexdigest()
            write_json(tmp / "manifest.json", self.manifest(preset))
            self.history_.to_csv(tmp / "history.csv", index=False)
            plot_history(self.history_, tmp / "loss.png")
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> "SequenceEncoder":
        """Rebuild an encoder from its directory alone; refuses tampered weights and newer formats."""
        path = Path(path)
        m = read_encoder_manifest(path)
        schema = ev.Schema.from_dict(m["schema"])
        cfg = EncoderConfig.from_dict(m["config"], source=f"manifest of '{path}'")
        enc = cls(schema.id_col, schema.time_col, schema.label_col, cfg,
                  numeric=schema.numeric, categorical=schema.categorical)
        enc.schema_, enc.config_ = schema, cfg
        try:
            enc.model_config_ = ModelConfig.from_dict(m["model_config"])
            enc.preprocessor_ = Preprocessor.from_state(cfg.data, m["preprocessing"])
            model = LSTMAutoencoder(enc.model_config_)
            model.load_state_dict(load_file(str(artifact_path(path, m["weights"], "weights"))))
        except (TypeError, ValueError, RuntimeError) as exc:  # a hand-edited manifest the weights do not fit
            raise ArtifactError(f"encoder '{path}': its manifest and weights do not fit together: "
                                f"{str(exc).splitlines()[0]}") from None
        enc.model_ = model.eval()
        enc.training_, enc.encoder_id_ = m["training"], m["encoder_id"]
        history = path / "history.csv"
        enc.history_ = pd.read_csv(history) if history.exists() else pd.DataFrame()
        return enc


def load(path: str | Path) -> SequenceEncoder:
    """Load a saved encoder directory: ``encoder.load("runs/enc")``."""
    return SequenceEncoder.load(path)
