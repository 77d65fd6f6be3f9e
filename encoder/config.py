"""EncoderConfig: every option of ``seqae encoder train``, frozen, loadable from TOML, saved resolved."""
from __future__ import annotations

import dataclasses
import math
import numbers
import tomllib
from pathlib import Path
from typing import Any

from encoder.io.errors import InputError

UNITS = ("entity", "event")
SCALERS = ("robust", "standard", "minmax")
LOG_TRANSFORMS = ("auto", "none", "all")
POOLINGS = ("last", "mean", "max", "attention")
ENCODE_BATCH = 1024  # sequences coded at once by encode and score (memory is bounded by it)
LENGTH_GROUP = 256  # within a batch, sequences of similar length step through the LSTM together
RUNNING_CHUNK_BYTES = 64 << 20  # causal event codes held at once when the input is in (id, time) order
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
class DataOptions:
    """Sequences and preprocessing: which events make a sequence, and how each event becomes inputs.

    ``max_len`` (None: for the entity unit the longest training sequence, for the event unit the
    95th percentile, both at most ``max_len_cap``; a longer sequence keeps its latest events) and
    ``patch`` (None: for the entity unit ``ceil(p95 length / PATCH_STEPS)`` events per LSTM step,
    else one) are resolved from the training data."""

    unit: str = "entity"
    max_len: int | None = None
    max_len_cap: int = 4096
    patch: int | None = None
    scaler: str = "robust"
    log_transform: str = "auto"
    min_freq: int = 2
    max_vocab: int = 1000
    min_entities: int = 2
    novelty: bool = True
    time_gap: bool = True
    diffs: bool = False
    lags: tuple[int, ...] = ()
    rolling: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True)
class NetworkOptions:
    """The trained network: embeddings, the masked (bi)LSTM and its pooled step codes, the optional
    dilated-convolution branch. ``pooling`` and ``causal`` (None: the unit's default) are resolved;
    a causal network reads no later event (forward LSTM, running pools). ``conv_depth`` (None) is
    the fewest dilated blocks through which every step of a window sees every other."""

    latent_dim: int = 32
    hidden_size: int = 64
    num_layers: int = 1
    bidirectional: bool = True
    pooling: tuple[str, ...] | None = None
    causal: bool | None = None
    dropout: float = 0.0
    embedding_dims: dict = dataclasses.field(default_factory=dict)
    conv_dim: int | None = None
    conv_depth: int | None = None
    conv_channels: int = 32


@dataclasses.dataclass(frozen=True)
class BlockOptions:
    """Code blocks beside the pooled step codes (``blocks.py``): segment maxima (``segments`` parts,
    kept after training only where the part explains at least ``segments_min_share`` of their
    variance, unless given explicitly), the next-event surprise channels (``surprise``, with
    ``surprise_halflife`` their recent mean and variance, ``surprise_scale`` a learned scale),
    summary statistics (``summary_stats``) and MiniRocket's random-kernel features
    (``kernel_features``, a multiple of 84). None: the unit's default."""

    segments: int | None = None
    segments_min_share: float = 0.1
    surprise: bool | None = None
    surprise_halflife: float = 3.0
    surprise_scale: bool | None = None
    summary_stats: bool | None = None
    kernel_features: int | None = None


@dataclasses.dataclass(frozen=True)
class NoiseOptions:
    """The denoising corruption of training inputs (never applied when encoding)."""

    noise_std: float = 0.1
    step_dropout: float = 0.05
    feature_dropout: float = 0.05
    unknown_rate: float = 0.05


@dataclasses.dataclass(frozen=True)
class TrainingOptions:
    """The objective's weights and the optimisation. ``max_steps_per_epoch`` and ``max_train_steps``
    bound the LSTM steps (windows x their mean steps; a convolution-branch step counts
    ``CONV_STEP_COST``) of an epoch and of the whole training: ``max_sequences_per_epoch`` and
    ``epochs`` resolve to fit (0: no bound). ``epochs = 0`` skips training: the untrained control of
    ``SequenceEncoder.untrained_twin``. ``recency_halflife`` and ``contrastive_weight`` (None) take
    the unit's defaults."""

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
    seed: int = 0


PARTS = {"data": DataOptions, "network": NetworkOptions, "blocks": BlockOptions, "noise": NoiseOptions,
         "training": TrainingOptions}
PART_OF = {f.name: part for part, kind in PARTS.items() for f in dataclasses.fields(kind)}  # option -> its part


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
    """All choices behind one encoder, in five parts: ``data`` (sequences, preprocessing),
    ``network``, ``blocks`` (code blocks beside the pooled step codes), ``noise`` (denoising) and
    ``training``. ``docs/design.md`` explains what each unit trains for and each block.

    Build one from option names, whatever their part: ``EncoderConfig.of(epochs=0, hidden_size=8)``;
    ``replace`` takes the same names. Options left at None are resolved by ``resolved`` from the
    training data (the unit's defaults, ``UNIT_DEFAULTS``; ``causal`` encoders refuse the options
    of ``WHOLE_SEQUENCE_ONLY``, which read later steps), and the resolved values are what the
    encoder directory records."""

    data: DataOptions = dataclasses.field(default_factory=DataOptions)
    network: NetworkOptions = dataclasses.field(default_factory=NetworkOptions)
    blocks: BlockOptions = dataclasses.field(default_factory=BlockOptions)
    noise: NoiseOptions = dataclasses.field(default_factory=NoiseOptions)
    training: TrainingOptions = dataclasses.field(default_factory=TrainingOptions)

    @classmethod
    def of(cls, **options: Any) -> "EncoderConfig":
        """A config from option names (``latent_dim=8``), each placed in its part; unknown names are refused."""
        unknown = sorted(set(options) - set(PART_OF))
        if unknown:
            raise InputError(f"config: unknown option '{unknown[0]}'")
        parts = {part: {} for part in PARTS}
        for name, value in options.items():
            parts[PART_OF[name]][name] = value
        return cls(**{part: PARTS[part](**values) for part, values in parts.items()})

    def options(self) -> dict:
        """Every option by name, parts flattened (names are unique across parts)."""
        return {name: getattr(getattr(self, part), name) for name, part in PART_OF.items()}

    def __post_init__(self) -> None:
        for part, kind in PARTS.items():
            if not isinstance(getattr(self, part), kind):
                raise InputError(f"config part '{part}' must be a {kind.__name__}, got {getattr(self, part)!r}")
        self._check_types()
        o = self.options()
        for name, allowed in (("unit", UNITS), ("scaler", SCALERS), ("log_transform", LOG_TRANSFORMS)):
            if o[name] not in allowed:
                raise InputError(f"config '{name}' is '{o[name]}'; expected one of {', '.join(allowed)}")
        if o["pooling"] is not None and (not o["pooling"] or any(p not in POOLINGS for p in o["pooling"])):
            raise InputError(f"config 'pooling' is {list(o['pooling'])}; expected a list of {', '.join(POOLINGS)}")
        if o["epochs"] < 0:
            raise InputError(f"config 'epochs' must be a whole number, 0 or more (0: an untrained control), "
                             f"got {o['epochs']!r}")
        for name in ("max_len_cap", "latent_dim", "hidden_size", "num_layers", "batch_size", "min_freq", "max_vocab",
                     "min_entities", "patience", "max_sequences_per_epoch"):
            if o[name] < 1:
                raise InputError(f"config '{name}' must be positive, got {o[name]}")
        for name in ("lags", "rolling"):
            bad = [k for k in o[name] if isinstance(k, bool) or not isinstance(k, int) or k < 1]
            if bad:
                raise InputError(f"config '{name}' holds {bad[0]!r}; every entry must be a positive whole number of steps")
        for name in ("max_len", "patch", "conv_depth", "conv_channels"):
            if o[name] is not None and o[name] < 1:
                raise InputError(f"config '{name}' must be positive, got {o[name]}")
        if o["kernel_features"] is not None and 0 < o["kernel_features"] < KERNEL_COUNT:
            raise InputError(f"config 'kernel_features' must be 0 (none) or at least {KERNEL_COUNT}, "
                             f"got {o['kernel_features']}")
        for name in ("conv_dim", "segments", "kernel_features", "max_steps_per_epoch", "max_train_steps", "noise_std",
                     "step_dropout", "feature_dropout", "unknown_rate", "dropout", "contrastive_weight",
                     "next_event_weight", "surprise_halflife", "recency_halflife"):
            if o[name] is not None and o[name] < 0:
                raise InputError(f"config '{name}' must not be negative, got {o[name]}")
        if not 0 <= o["segments_min_share"] <= 1:
            raise InputError(f"config 'segments_min_share' must be in [0, 1], got {o['segments_min_share']}")
        if not 0 <= o["val_fraction"] < 1:
            raise InputError(f"config 'val_fraction' must be in [0, 1), got {o['val_fraction']}")

    def _check_types(self) -> None:
        """Every option of the type its field declares (a TOML file may hold ``latent_dim = 2.5``)."""
        kinds = {"int": (numbers.Integral,), "float": (numbers.Real,), "bool": (bool,), "str": (str,)}
        words = {"int": "a whole number", "float": "a number", "bool": "true or false", "str": "text"}
        for part in PARTS:
            for f in dataclasses.fields(getattr(self, part)):
                value, kind = getattr(getattr(self, part), f.name), str(f.type).split(" | ")
                if value is None and "None" in kind:
                    continue
                base = kind[0]
                if base.startswith("tuple"):
                    if not isinstance(value, (tuple, list)):
                        raise InputError(f"config '{f.name}' must be a list, got {value!r}")
                    continue
                if base.startswith("dict"):
                    if not isinstance(value, dict):
                        raise InputError(f"config '{f.name}' must be a table of names, got {value!r}")
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
        o = self.options()
        unit = o["unit"]
        auto = {k: v for k, v in UNIT_DEFAULTS[unit].items() if o[k] is None}
        p95 = max(1, int(math.ceil(np.percentile(lengths, 95))))
        longest = p95 if unit == "event" else max(1, int(np.max(lengths)))
        max_len = o["max_len"] or min(o["max_len_cap"], longest)
        surprise = auto.get("surprise", o["surprise"])
        if "causal" in auto and ("attention" in auto.get("pooling", o["pooling"]) or (o["patch"] or 1) > 1):
            auto["causal"] = False  # the unit's default yields to an explicit windowed-only choice
        causal = auto.get("causal", o["causal"])
        patch = o["patch"] or (1 if unit == "event" or surprise or causal else
                               max(1, math.ceil(min(p95, max_len) / PATCH_STEPS)))
        if surprise and patch > 1:
            raise InputError(f"config 'surprise' codes each event's departure from its past and needs one "
                             f"event per step, but 'patch' is {patch}")
        if causal:
            if patch > 1:
                raise InputError(f"config 'causal' codes every event as it comes and needs one event per step, "
                                 f"but 'patch' is {patch}")
            pooling = auto.get("pooling", o["pooling"])
            if "attention" in pooling:
                raise InputError(f"config 'causal' pools with running last/mean/max only, but 'pooling' is "
                                 f"{list(pooling)}")
            auto["bidirectional"] = False  # a causal code never reads a later event
            for name, (why, off) in WHOLE_SEQUENCE_ONLY.items():
                if auto.get(name, o[name]):
                    if name not in auto:  # asked for explicitly
                        raise InputError(f"config '{name}' is {o[name]}: {why}, but 'causal' codes every "
                                         f"event from earlier ones only; set {name} = {str(off).lower()} or causal = false")
                    auto[name] = off  # the unit's default yields to causal
        conv = auto.get("conv_dim", o["conv_dim"])
        conv_depth = (o["conv_depth"] or conv_depth_for(-(-max_len // patch))) if conv else o["conv_depth"]
        per_epoch, epochs = o["max_sequences_per_epoch"], o["epochs"]
        step_cap = auto.get("max_steps_per_epoch", o["max_steps_per_epoch"])
        train_cap = auto.get("max_train_steps", o["max_train_steps"])
        if step_cap or train_cap:
            from encoder.sequences import mean_window_steps
            cost = CONV_STEP_COST if conv else 1.0
            steps = mean_window_steps(lengths, max_len, patch, unit) * cost  # a window's LSTM steps
            if step_cap:
                per_epoch = min(per_epoch, max(1, int(step_cap // steps)))
            if train_cap:  # the training windows (validation entities held out) an epoch reads
                windows = len(lengths) if unit == "entity" else int(np.sum(lengths))
                read = min(per_epoch, max(1, round(windows * (1 - o["val_fraction"]))))
                epochs = min(epochs, max(1, int(train_cap // (read * steps))))
        kernel_features = auto.pop("kernel_features", o["kernel_features"])
        kernel_features = kernel_features // KERNEL_COUNT * KERNEL_COUNT  # whole sets of the 84 kernels
        return self.replace(max_len=max_len, patch=patch, max_sequences_per_epoch=per_epoch, epochs=epochs,
                            conv_depth=conv_depth, kernel_features=kernel_features, **auto)

    def replace(self, **changes: Any) -> "EncoderConfig":
        """A copy with ``changes`` (option names, whatever their part) applied; ``None`` values are
        ignored (an option not given)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        unknown = sorted(set(changes) - set(PART_OF))
        if unknown:
            raise InputError(f"config: unknown option '{unknown[0]}'")
        by_part = {}
        for name, value in changes.items():
            by_part.setdefault(PART_OF[name], {})[name] = value
        return dataclasses.replace(self, **{part: dataclasses.replace(getattr(self, part), **values)
                                            for part, values in by_part.items()})

    def to_dict(self) -> dict:
        """The options by part, lists for tuples: what a manifest records and a TOML file may hold."""
        return {part: {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(getattr(self, part)).items()}
                for part in PARTS}

    @classmethod
    def from_dict(cls, d: dict, source: str = "config") -> "EncoderConfig":
        """A config from options by part (``{"network": {"hidden_size": 8}}``, as ``to_dict`` writes
        and TOML tables hold), by name at the top level (older manifests, short TOML files), or both."""
        flat = {}
        for key, value in d.items():
            if key in PARTS and isinstance(value, dict):
                for name, v in value.items():
                    if PART_OF.get(name, key) != key:
                        raise InputError(f"{source}: option '{name}' belongs to part '{PART_OF[name]}', not '{key}'")
                    flat[name] = v
            else:
                flat[key] = value
        flat = legacy_options(flat, source)
        clean = {}
        for k, v in flat.items():
            clean[k] = tuple(v) if isinstance(v, list) else v
            if k == "pooling" and isinstance(v, str):
                clean[k] = tuple(p.strip() for p in v.split(",") if p.strip())
        try:
            return cls.of(**clean)
        except TypeError as exc:
            raise InputError(f"{source}: {exc}") from None
        except InputError as exc:
            raise InputError(f"{source}: {str(exc).removeprefix('config: ')}") from None


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
