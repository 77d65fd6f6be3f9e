"""EncoderConfig: every option of ``seqae encoder train``, frozen, loadable from TOML, saved resolved."""
from __future__ import annotations

import dataclasses
import math
import tomllib
from pathlib import Path
from typing import Any

from .errors import InputError

UNITS = ("entity", "event")
SCALERS = ("robust", "standard", "minmax")
LOG_TRANSFORMS = ("auto", "none", "all")
MERGES = ("concat", "branches")
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
    """All choices behind one encoder: preprocessing, architecture, denoising and training.

    ``max_len=None`` means, for ``unit="entity"``, the longest training sequence (at most
    ``max_len_cap``), so no sequence loses events unless it is longer than the cap; for
    ``unit="event"``, the 95th percentile of training sequence lengths (at most ``max_len_cap``):
    the window of history each event is coded with. Any sequence longer than ``max_len`` keeps
    its latest events; ``fit`` counts those and the manifest records them.

    ``patch=None`` means one LSTM step per event for ``unit="event"`` and, for ``unit="entity"``,
    ``ceil(p95 length / PATCH_STEPS)`` events per step: long sequences are read whole, each LSTM
    step seeing the concatenated inputs of ``patch`` consecutive events (strided reading), so the
    LSTM runs at most about 256 steps however long the series (shorter sequences: one event per step).

    ``max_steps_per_epoch`` bounds the work of a training epoch: an epoch reads at most that many
    LSTM steps (sequences x steps per window), so ``max_sequences_per_epoch`` resolves to at most
    ``max_steps_per_epoch`` // the mean steps of a training window (the epoch's windows are drawn at
    random every epoch, the validation windows once). The entity unit's default, 24000, was about
    0.65 s of training on 2 cores when chosen (``max_train_steps`` bounds the epochs now); of the
    sets aeon ships only OSULeaf (160 training series of 214 steps) is read in parts, 112 series an
    epoch. With the convolution branch a step counts twice (``CONV_STEP_COST``): OSULeaf 56 series
    an epoch, ACSF1 (80 of 244 steps) 49. 0 is no bound (the event unit's default, whose epochs
    ``max_sequences_per_epoch`` already bounds).

    ``max_train_steps`` bounds the whole training the same way: ``epochs`` resolves to at most
    ``max_train_steps`` // the LSTM steps an epoch reads (its training windows x their mean steps,
    a branch step twice), so the manifest records the epochs a run may take. Epochs of 20000-24000
    steps measured 1.4-1.6 s on 2 cores on 2026-12-05 (OSULeaf, ACSF1), not the 0.65 s above, so
    200 epochs of a long set no longer fitted in 3 minutes: ACSF1 (80 training series of 244 steps)
    trained 318 s. The entity default, 1.2 million steps, was about 100 s of training: ACSF1 61
    epochs, OSULeaf 50 (37-57 s since validation skips the random kernels, 2026-12-06); a set of
    40 series of 150 steps (GunPoint) keeps its 200. Early stopping
    still ends most runs sooner. 0 is no bound (the event unit's default).

    ``recency_halflife``, ``pooling``, ``contrastive_weight``, ``surprise``, ``surprise_scale``,
    ``causal``, ``max_steps_per_epoch``, ``max_train_steps``, ``summary_stats``, ``conv_dim``, ``segments`` and ``kernel_features`` left at None
    take the defaults of the unit (``UNIT_DEFAULTS``):

    - ``unit="entity"`` codes a whole sequence (classify machines, accounts, series): step codes
      are max-pooled and a TS2Vec-style contrastive term trains them alongside reconstruction;
      with ``summary_stats`` (on for this unit) the code ends with ten statistics of each numeric
      input channel over the sequence (``model.SUMMARY_STATS``: mean, std, min, max, first, latest,
      quartiles, mean absolute change), a hybrid of learned code and plain description that a
      classifier reads in one table (not trained, not learned: the control of what training adds
      keeps them too);
    - ``unit="event"`` codes an event in its past (score transactions): the latest step code is
      pooled with the mean and max of the others, the reconstruction loss favours recent events
      (half-life 3 steps) and there is no contrastive term, whose invariance to context would
      blunt exactly the "this event does not fit its history" signal. With ``surprise`` (on for
      this unit) a next-event head on the forward LSTM predicts every event from its past only
      (trained with weight ``next_event_weight``), and the code ends with the latest event's
      surprise per input channel: the signed error of each numeric channel and the normalised
      ``-log p`` of each categorical value; then, with ``surprise_halflife`` > 0 (default 3 events),
      the exponentially weighted mean and variance of each channel's surprise over the latest event
      and the earlier ones, each event's weight halving every ``surprise_halflife`` events back: how
      surprising and how erratic the entity has been lately (a steady cadence or a ramp has a low
      variance), not only the latest event. 0 leaves them out.
      With ``surprise_scale`` (on for this unit) the head also predicts a scale per numeric
      channel (trained by Gaussian likelihood) and a numeric surprise is the error in predicted
      scales, ``(value - mean) / scale``: the same jump counts more for an entity whose past made
      it unlikely than for an erratic one; ``false`` gives the plain error ``value - mean``.

    ``conv_dim`` > 0 adds a dilated convolution branch beside the LSTM (TS2Vec's encoder, in
    ``model.DilatedConvBranch``): ``conv_depth`` residual blocks of ``conv_channels`` channels whose
    dilation doubles, so each step sees ``1 + 4 (2^conv_depth - 1)`` steps around it (None: the
    fewest blocks that see a whole window of ``max_len`` events, ``conv_depth_for``); its
    ``conv_dim`` step codes follow the LSTM's ``latent_dim`` ones, are pooled and trained with
    them (reconstruction and the contrastive term) and widen the pooled code to their sum. It reads
    later steps too, so a ``causal`` encoder refuses it. 0, no branch, is the default of both units:
    64 lifted the long shape-driven UCR sets (OSULeaf, PickupGestureWiimoteZ) and lowered GunPoint
    and ACSF1, for twice the training time (README "Benchmarks").

    ``segments`` > 0 follows the pooled code with each pooled channel's maximum over each of that
    many equal, consecutive parts of the sequence (``model.segment_max``): in which part a shape
    occurs, not only whether it does. They are read from the trained step codes, not trained
    themselves, so an encoder's codes with and without them differ by those channels only. They
    need a sequence's whole length, so a ``causal`` encoder refuses them. They lifted the UCR sets
    whose series are aligned in time (ItalyPowerDemand, hours of a day; PickupGestureWiimoteZ) and
    lowered those whose shapes move along the series (OSULeaf, ACSF1). So the entity unit's
    default, 4, is provisional: after training, ``fit`` measures on the training sequences how much
    a part says about its maxima (``model.position_share``) and keeps them only where that share
    is at least ``segments_min_share`` (0.1; aligned sets measured 0.16-0.58, the others 0.01-0.04),
    else resolves ``segments`` to 0; the manifest records the share and the choice
    (``training.segments``). A ``segments`` given explicitly is kept as given. 0 for the event unit.

    ``kernel_features`` > 0 (a multiple of 84; 2520 for the entity unit, 0 for the event unit) ends
    the code with MiniRocket's random-kernel features of the numeric channels (``kernels``): plain
    proportions of steps above fitted biases, not trained. They lifted every UCR set measured
    (README "Benchmarks") and widen the code by as many columns. A ``causal`` encoder refuses them.

    ``causal=True`` (any unit) makes a forward-only encoder whose code after an event depends on
    the LSTM state after it and the running mean and max of the step codes so far (pooling from
    ``last``, ``mean``, ``max``); ``bidirectional`` is then False. Event codes are then written in
    one pass over each entity's whole history, O(events), instead of re-reading a ``max_len``
    window for every event, O(events x window): training still reads windows of ``max_len``
    events, scoring carries the state through all of an entity's events.

    The resolved values (``resolved``) are what the encoder directory records.
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
    merge: str = "concat"
    branch_size: int = 32
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
        for name, allowed in (("unit", UNITS), ("scaler", SCALERS),
                              ("log_transform", LOG_TRANSFORMS), ("merge", MERGES)):
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
                     "batch_size", "min_freq", "max_vocab", "min_entities", "branch_size", "patience", "max_sequences_per_epoch"):
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
        except TypeError as exc:
            raise InputError(f"{source}: {exc}") from None

    @classmethod
    def from_toml(cls, path: str | Path) -> "EncoderConfig":
        """Read a TOML file whose keys are option names (top level or under ``[encoder]``)."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise InputError(f"config file '{path}' does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"config file '{path}' is not valid TOML: {exc}") from None
        data = data.get("encoder", data)
        return cls.from_dict(data, source=f"config file '{path}'")


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
