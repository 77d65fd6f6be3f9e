"""EncoderConfig: every option of ``seqae encoder train``, frozen, loadable from TOML, saved resolved."""
from __future__ import annotations

import dataclasses
import math
import numbers
import tomllib
from pathlib import Path
from typing import Any

from .errors import InputError

UNITS = ("entity", "event")
SCALERS = ("robust", "standard", "minmax")
LOG_TRANSFORMS = ("auto", "none", "all")
POOLINGS = ("last", "mean", "max", "attention")
ENCODE_BATCH = 1024  # sequences coded at once by encode and score (memory is bounded by it)
# A step read with the convolution branch costs about twice an LSTM-only one (OSULeaf, 2 cores:
# 1.39 s against 0.64 s an epoch of 112 series), so ``max_steps_per_epoch`` counts it twice.
CONV_STEP_COST = 2.0
KERNEL_COUNT = 84  # MiniRocket's kernels (``kernels.KERNELS``): features come in multiples of it
PATCH_STEPS = 256  # entity unit: sequences up to this long are read one event per LSTM step
UNIT_DEFAULTS = {
    "entity": {"recency_halflife": 0.0, "pooling": ("max",), "contrastive_weight": 1.0, "surprise": False,
               "surprise_scale": False, "causal": False, "max_steps_per_epoch": 24000, "max_train_steps": 1_200_000,
               "summary_stats": True, "conv_dim": 0, "segments": 4, "kernel_features": 2520},
    "event": {"recency_halflife": 3.0, "pooling": ("last", "mean", "max"), "contrastive_weight": 0.0, "surprise": True,
              "surprise_scale": True, "causal": True, "max_steps_per_epoch": 0, "max_train_steps": 0,
              "summary_stats": False, "conv_dim": 0, "segments": 0, "kernel_features": 0},
}

# Options a causal encoder cannot have: why, and the value that turns each off.
WHOLE_SEQUENCE_ONLY = {
    "summary_stats": ("the statistics describe a whole window at once", False),
    "conv_dim": ("the convolution branch reads later steps too", 0),
    "segments": ("segment maxima need the whole sequence's length", 0),
    "kernel_features": ("the random kernels read later steps too", 0),
}


def conv_depth_for(steps: int) -> int:
    """The fewest dilated blocks (dilations 1, 2, 4, ...; kernel 3, two convolutions each) through
    which every one of ``steps`` steps sees every other: a receptive field, ``1 + 4 (2^depth - 1)``
    steps centred on a step, of at least ``2 steps - 1``."""
    depth = 1
    while 1 + 4 * (2 ** depth - 1) < 2 * steps - 1:
        depth += 1
    return depth


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
    """All choices behind one encoder: sequences, preprocessing, architecture and code blocks,
    denoising, training. ``docs/design.md`` explains what each unit trains for and each block.

    Options left at None are resolved by ``resolved`` from the training data, and the resolved
    values are what the encoder directory records:

    - ``max_len``: for ``unit="entity"`` the longest training sequence, for ``unit="event"`` the
      95th percentile (both at most ``max_len_cap``); a longer sequence keeps its latest events,
      and ``fit`` counts and warns about those.
    - ``patch``: for ``unit="entity"``, ``ceil(p95 length / PATCH_STEPS)`` events per LSTM step,
      so the LSTM runs at most about 256 steps however long the series; else one event per step.
    - ``max_steps_per_epoch`` and ``max_train_steps`` bound the LSTM steps (windows x their mean
      steps; a convolution-branch step counts ``CONV_STEP_COST``) of an epoch and of the whole
      training: ``max_sequences_per_epoch`` and ``epochs`` resolve to fit. 0 is no bound.
    - ``recency_halflife``, ``pooling``, ``contrastive_weight``, ``surprise``, ``surprise_scale``,
      ``causal``, ``summary_stats``, ``conv_dim``, ``segments`` and ``kernel_features`` take the
      unit's defaults (``UNIT_DEFAULTS``). ``causal`` encoders refuse the options of
      ``WHOLE_SEQUENCE_ONLY``, which read later steps.
    - ``conv_depth``: the fewest dilated blocks through which every step of a window sees every
      other (``conv_depth_for``).

    The code's blocks, in order (``blocks.py``): the pooled LSTM step codes (``latent_dim``), the
    convolution branch's (``conv_dim``), the segment maxima (``segments`` parts, kept after
    training only where the part explains at least ``segments_min_share`` of their variance,
    unless given explicitly), the surprise channels (``surprise``, with ``surprise_halflife``
    their recent mean and variance), summary statistics (``summary_stats``) and MiniRocket's
    random-kernel features (``kernel_features``, a multiple of 84). ``epochs = 0`` skips training:
    the untrained control of ``SequenceEncoder.untrained_twin``.
    """

    # sequences
    unit: str = "entity"
    max_len: int | None = None
    max_len_cap: int = 4096
    patch: int | None = None
    # preprocessing
    scaler: str = "robust"
    log_transform: str = "auto"
    min_freq: int = 2
    max_vocab: int = 1000
    min_entities: int = 2
    novelty: bool = True
    embedding_dims: dict = dataclasses.field(default_factory=dict)
    time_gap: bool = True
    diffs: bool = False
    lags: tuple[int, ...] = ()
    rolling: tuple[int, ...] = ()
    # architecture
    latent_dim: int = 32
    hidden_size: int = 64
    num_layers: int = 1
    bidirectional: bool = True
    pooling: tuple[str, ...] | None = None
    surprise: bool | None = None
    causal: bool | None = None
    summary_stats: bool | None = None
    conv_dim: int | None = None
    conv_depth: int | None = None
    conv_channels: int = 32
    segments: int | None = None
    segments_min_share: float = 0.1
    kernel_features: int | None = None
    dropout: float = 0.0
    # denoising (training only)
    noise_std: float = 0.1
    step_dropout: float = 0.05
    feature_dropout: float = 0.05
    unknown_rate: float = 0.05
    # training
    epochs: int = 200
    batch_size: int = 64
    min_batches_per_epoch: int = 8
    max_sequences_per_epoch: int = 20000
    max_steps_per_epoch: int | None = None
    max_train_steps: int | None = None
    lr: float = 3e-3
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    lr_patience: int = 5
    patience: int = 20
    val_fraction: float = 0.2
    categorical_weight: float = 1.0
    recency_halflife: float | None = None
    contrastive_weight: float | None = None
    next_event_weight: float = 1.0
    surprise_halflife: float = 3.0
    surprise_scale: bool | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        self._check_types()
        for name, allowed in (("unit", UNITS), ("scaler", SCALERS),
                              ("log_transform", LOG_TRANSFORMS)):
            if getattr(self, name) not in allowed:
                raise InputError(f"config '{name}' is '{getattr(self, name)}'; "
                                 f"expected one of {', '.join(allowed)}")
        if self.pooling is not None and (not self.pooling or any(p not in POOLINGS for p in self.pooling)):
            raise InputError(f"config 'pooling' is {list(self.pooling)}; "
                             f"expected a list of {', '.join(POOLINGS)}")
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 0:
            raise InputError(f"config 'epochs' must be a whole number, 0 or more (0: an untrained control), "
                             f"got {self.epochs!r}")
        for name in ("max_len_cap", "latent_dim", "hidden_size", "num_layers",
                     "batch_size", "min_freq", "max_vocab", "min_entities", "patience", "max_sequences_per_epoch"):
            if getattr(self, name) < 1:
                raise InputError(f"config '{name}' must be positive, got {getattr(self, name)}")
        for name in ("lags", "rolling"):
            bad = [k for k in getattr(self, name) if isinstance(k, bool) or not isinstance(k, int) or k < 1]
            if bad:
                raise InputError(f"config '{name}' holds {bad[0]!r}; every entry must be a positive whole number of steps")
        for name in ("max_len", "patch", "conv_depth", "conv_channels"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise InputError(f"config '{name}' must be positive, got {getattr(self, name)}")
        if self.kernel_features is not None and 0 < self.kernel_features < KERNEL_COUNT:
            raise InputError(f"config 'kernel_features' must be 0 (none) or at least {KERNEL_COUNT}, "
                             f"got {self.kernel_features}")
        for name in ("conv_dim", "segments", "kernel_features", "max_steps_per_epoch", "max_train_steps", "noise_std", "step_dropout", "feature_dropout", "unknown_rate", "dropout", "contrastive_weight",
                     "next_event_weight", "surprise_halflife"):
            if getattr(self, name) is not None and getattr(self, name) < 0:
                raise InputError(f"config '{name}' must not be negative, got {getattr(self, name)}")
        if self.recency_halflife is not None and self.recency_halflife < 0:
            raise InputError(f"config 'recency_halflife' must not be negative, got {self.recency_halflife}")
        if not 0 <= self.segments_min_share <= 1:
            raise InputError(f"config 'segments_min_share' must be in [0, 1], got {self.segments_min_share}")
        if not 0 <= self.val_fraction < 1:
            raise InputError(f"config 'val_fraction' must be in [0, 1), got {self.val_fraction}")

    def _check_types(self) -> None:
        """Every option of the type its field declares (a TOML file may hold ``latent_dim = 2.5``)."""
        kinds = {"int": (numbers.Integral,), "float": (numbers.Real,), "bool": (bool,), "str": (str,)}
        words = {"int": "a whole number", "float": "a number", "bool": "true or false", "str": "text"}
        for f in dataclasses.fields(self):
            value, kind = getattr(self, f.name), str(f.type).split(" | ")
            if value is None and "None" in kind:
                continue
            base = kind[0]
            if base.startswith("tuple"):
                if not isinstance(value, (tuple, list)):
                    raise InputError(f"config '{f.name}' must be a list, got {value!r}")
                continue
            if base not in kinds:
                continue
            bad = not isinstance(value, kinds[base]) or (base != "bool" and isinstance(value, bool))
            if bad:
                raise InputError(f"config '{f.name}' must be {words[base]}, got {value!r}")

    def resolved(self, lengths) -> "EncoderConfig":
        """A copy with ``max_len``, ``patch`` and every unit-dependent option left at None filled in,
        from the training sequence ``lengths`` (events per entity)."""
        import numpy as np
        auto = {k: v for k, v in UNIT_DEFAULTS[self.unit].items() if getattr(self, k) is None}
        p95 = max(1, int(math.ceil(np.percentile(lengths, 95))))
        longest = p95 if self.unit == "event" else max(1, int(np.max(lengths)))
        max_len = self.max_len or min(self.max_len_cap, longest)
        surprise = auto.get("surprise", self.surprise)
        if "causal" in auto and ("attention" in auto.get("pooling", self.pooling) or (self.patch or 1) > 1):
            auto["causal"] = False  # the unit's default yields to an explicit windowed-only choice
        causal = auto.get("causal", self.causal)
        patch = self.patch or (1 if self.unit == "event" or surprise or causal else
                               max(1, math.ceil(min(p95, max_len) / PATCH_STEPS)))
        if surprise and patch > 1:
            raise InputError(f"config 'surprise' codes each event's departure from its past and needs one "
                             f"event per step, but 'patch' is {patch}")
        if causal:
            if patch > 1:
                raise InputError(f"config 'causal' codes every event as it comes and needs one event per step, "
                                 f"but 'patch' is {patch}")
            pooling = auto.get("pooling", self.pooling)
            if "attention" in pooling:
                raise InputError(f"config 'causal' pools with running last/mean/max only, but 'pooling' is "
                                 f"{list(pooling)}")
            auto["bidirectional"] = False  # a causal code never reads a later event
            for name, (why, off) in WHOLE_SEQUENCE_ONLY.items():
                if auto.get(name, getattr(self, name)):
                    if name not in auto:  # asked for explicitly
                        raise InputError(f"config '{name}' is {getattr(self, name)}: {why}, but 'causal' codes every "
                                         f"event from earlier ones only; set {name} = {str(off).lower()} or causal = false")
                    auto[name] = off  # the unit's default yields to causal
        conv = auto.get("conv_dim", self.conv_dim)
        conv_depth = (self.conv_depth or conv_depth_for(-(-max_len // patch))) if conv else self.conv_depth
        per_epoch, epochs = self.max_sequences_per_epoch, self.epochs
        step_cap = auto.get("max_steps_per_epoch", self.max_steps_per_epoch)
        train_cap = auto.get("max_train_steps", self.max_train_steps)
        if step_cap or train_cap:
            from .sequences import mean_window_steps
            cost = CONV_STEP_COST if conv else 1.0
            steps = mean_window_steps(lengths, max_len, patch, self.unit) * cost  # a window's LSTM steps
            if step_cap:
                per_epoch = min(per_epoch, max(1, int(step_cap // steps)))
            if train_cap:  # the training windows (validation entities held out) an epoch reads
                windows = len(lengths) if self.unit == "entity" else int(np.sum(lengths))
                read = min(per_epoch, max(1, round(windows * (1 - self.val_fraction))))
                epochs = min(epochs, max(1, int(train_cap // (read * steps))))
        kernel_features = auto.pop("kernel_features", self.kernel_features)
        kernel_features = kernel_features // KERNEL_COUNT * KERNEL_COUNT  # whole sets of the 84 kernels
        return dataclasses.replace(self, max_len=max_len, patch=patch, max_sequences_per_epoch=per_epoch,
                                   epochs=epochs, conv_depth=conv_depth, kernel_features=kernel_features, **auto)

    def replace(self, **changes: Any) -> "EncoderConfig":
        """A copy with ``changes`` applied; ``None`` values are ignored (an option not given)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict, source: str = "config") -> "EncoderConfig":
        fields = {f.name: f for f in dataclasses.fields(cls)}
        d = legacy_options(d, source)
        unknown = sorted(set(d) - set(fields))
        if unknown:
            raise InputError(f"{source}: unknown option '{unknown[0]}'")
        clean = {}
        for k, v in d.items():
            clean[k] = tuple(v) if isinstance(v, list) else v
            if k == "pooling" and isinstance(v, str):
                clean[k] = tuple(p.strip() for p in v.split(",") if p.strip())
        try:
            return cls(**clean)
        except (TypeError, InputError) as exc:
            raise InputError(f"{source}: {exc}") from None


def legacy_options(d: dict, source: str) -> dict:
    """``d`` without the options of older encoders that changed nothing at their defaults
    (``merge = "concat"``, ``branch_size``); a non-default value of one is refused by name."""
    if d.get("merge", "concat") != "concat":
        raise InputError(f"{source}: option 'merge' = {d['merge']!r} is no longer supported (only \"concat\" was kept)")
    return {k: v for k, v in d.items() if k not in ("merge", "branch_size")}


COLUMN_KEYS = ("id", "time", "label", "numeric", "categorical", "drop")  # column roles a config file may name


def read_config_file(path: str | Path | None) -> tuple[EncoderConfig, dict]:
    """Options from a TOML file (top level or under ``[encoder]``): the encoder options, and the
    column roles it names (``COLUMN_KEYS``: id, time, label, numeric, categorical, drop)."""
    if path is None:
        return EncoderConfig(), {}
    try:
        data = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise InputError(f"config file '{path}' does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"config file '{path}' is not valid TOML: {exc}") from None
    data = dict(data.get("encoder", data))
    columns = {k: data.pop(k) for k in COLUMN_KEYS if k in data}
    return EncoderConfig.from_dict(data, source=f"config file '{path}'"), columns
