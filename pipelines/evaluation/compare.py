"""``compare``: latent codes vs raw-feature baselines on one time split, one classifier, one budget.

Flow: read events -> split by time (train / validation / test periods, or an external test table)
-> fit the encoder on the train period only -> codes, reconstruction error and point-in-time
baseline features for every row -> the same ``LatentClassifier`` for each model -> the same
evaluation (``bootstrap.evaluate_models``) on the test period -> report.
"""
from __future__ import annotations

import contextlib
import dataclasses
import sys
import time

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from classifier import LatentClassifier
from classifier.estimator import label_indices
from encoder import EncoderConfig, SequenceEncoder
from encoder import events as ev
from encoder.io.errors import InputError
from pipelines.evaluation.bootstrap import evaluate_models
from pipelines.evaluation.splits import TimeSplit, delayed_labels, parse_delay, time_split
from pipelines.features import FeatureRecipe, features_in_output_order, fit_recipe

SELECTED = ("aggregates", "hybrid_joint")  # the many-feature models that --select also fits with fewer
STACKED = ("hybrid", "hybrid_recon", "hybrid_full", "hybrid_untrained")  # boosted from the aggregates model's margins
# Variants of ``hybrid`` fitted only when asked (``variants``): each is a question about the design,
# not about the data, and together they were a third of a comparison's classifiers;
# ``hybrid_recon`` also needs the reconstruction error, a window per event (the codes alone are one
# causal pass per entity).
VARIANTS = ("hybrid_joint", "hybrid_recon", "hybrid_full")
UNTRAINED = "u_"  # prefix of the untrained twin's code columns in the feature table
# (model, control): "did training pay?" and "do the learned blocks beat the untrained ones?"
CONTROL_PAIRS = (("latent", "untrained"), ("hybrid", "hybrid_untrained"), ("latent", "minirocket"))


def model_columns(columns, event_codes=(), summary=()) -> dict[str, list[str]]:
    """Feature columns of each compared model, from the columns of the feature table.

    ``summary`` names code channels that are plain statistics of the sequence, not learned (an
    entity encoder's ``summary_stats`` and random-kernel features, ``SequenceEncoder.code_layout()``'s
    ``"summary"`` and ``"kernels"``): they are left
    out of every model, so ``latent`` is the learned code alone and the aggregates, which hold such
    statistics, are not counted twice in ``hybrid``.

    ``event_codes`` names the code channels that describe each event against its own history (an
    event encoder's surprise channels, ``SequenceEncoder.code_layout()["surprise"]``). Where given,
    ``hybrid`` joins only these to the aggregates, and ``hybrid_full`` joins every code channel: the
    pooled history summary repeats what the aggregates already say, and lets the trees learn the
    train period's accounts (measured on the demo simulator's seeds 0-4: tuning data).

    Controls, where the table has their columns: ``untrained`` is ``latent`` read from the untrained
    twin's codes (``UNTRAINED`` + the same ``z_*`` names: the same blocks, the same fitted
    preprocessing and untrained features, only the network's weights at their initialisation), and
    ``hybrid_untrained`` is ``hybrid`` with the twin's codes; ``minirocket`` is the untrained feature
    blocks alone (``summary``: random kernels and statistics), a raw-feature baseline of its own.

    The ``hybrid`` models (``STACKED``) are stacked on the aggregates (``LatentClassifier(
    base_features=...)``): a model of the aggregates' columns, then trees on every column boosted
    from its margins, which can add only what the codes say beyond the aggregates; ``hybrid_joint``
    is one model of the same columns as ``hybrid``. On the fraud benchmark the stacked hybrid's
    paired intervals against the aggregates were 2-4x narrower (demo seeds 0-4)."""
    plain = set(summary)
    z = [c for c in columns if c.startswith("z_") and c not in plain]
    raw = [c for c in columns if c.startswith("raw_")]
    agg = [c for c in columns if c.startswith("agg_")]
    wanted = set(event_codes)
    event = [c for c in z if c in wanted]
    codes = event or z  # the code channels the hybrid joins to the aggregates
    cols = {"raw_last": raw, "aggregates": raw + agg, "latent": z, "hybrid": codes + raw + agg,
            "hybrid_joint": codes + raw + agg, "hybrid_recon": codes + raw + agg + ["recon_error"]}
    cols |= {"hybrid_full": z + raw + agg} if event else {}
    present = set(columns)
    if all(UNTRAINED + c in present for c in z):
        cols |= {"untrained": [UNTRAINED + c for c in z], "hybrid_untrained": [UNTRAINED + c for c in codes] + raw + agg}
    untrained_blocks = [c for c in columns if c in plain]
    return cols | ({"minirocket": untrained_blocks} if untrained_blocks else {})


@dataclasses.dataclass
class CompareResult:
    """Everything ``report.write_report`` needs."""

    metrics: dict
    predictions: pd.DataFrame      # test rows: keys, label, score_<model> (binary) or pred_<model>
    split: TimeSplit
    encoder: SequenceEncoder
    classifiers: dict
    recipe: FeatureRecipe
    label_col: str
    classes: list
    curves: dict                   # binary: {model: (y, score)}
    untrained: SequenceEncoder | None = None  # the encoder's untrained twin, whose codes the controls read


class StageClock:
    """Seconds spent in each named stage of a run, in order; ``stage(name)`` is a context manager.
    A name entered again adds to its total. ``on_stage(name, seconds)``, if given, hears of each
    stage as it ends (a long run shows where its time goes before it finishes)."""

    def __init__(self, on_stage=None):
        self.seconds: dict[str, float] = {}
        self.on_stage = on_stage

    @contextlib.contextmanager
    def stage(self, name: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            spent = time.perf_counter() - start
            self.seconds[name] = self.seconds.get(name, 0.0) + spent
            if self.on_stage is not None:
                self.on_stage(name, spent)


def build_features(enc: SequenceEncoder, recipe: FeatureRecipe, frame: pd.DataFrame, unit: str,
                   batch_size: int = 1024, twin: SequenceEncoder | None = None,
                   clock: StageClock | None = None, reconstruction_error: bool = True) -> pd.DataFrame:
    """Codes, reconstruction error (``recon_error``, if asked) and baseline features of ``frame``, one row per sequence, in the
    encoder's output order (input order for events; by id for entities); with ``twin`` (the
    encoder's untrained twin, which shares its preprocessing), also the twin's learned blocks as
    ``UNTRAINED`` + their ``z_*`` names (its untrained blocks equal the encoder's). ``clock``
    records the seconds of each part."""
    clock = clock or StageClock()
    with clock.stage("preprocessing"):
        data, arrays = enc.prepare(frame, keep_frame=True, unit=unit)  # read and preprocess once for all
    with clock.stage("baseline features"):
        base = features_in_output_order(recipe, data, unit)
    with clock.stage("codes"):
        codes = pd.concat(enc.iter_prepared(data, arrays, unit, batch_size, reconstruction_error=reconstruction_error),
                          ignore_index=True)
    parts = [codes, base]
    if twin is not None:
        with clock.stage("untrained twin codes"):
            u = pd.concat(twin.iter_prepared(data, arrays, unit, batch_size, blocks="learned"), ignore_index=True)
        parts.append(u[[c for c in u.columns if c.startswith("z_")]].add_prefix(UNTRAINED))
    with clock.stage("joining features"):
        return pd.concat(parts, axis=1)


def run_compare(events, id_col: str, time_col: str, label_col: str, test_events=None, *,
                config: EncoderConfig | None = None, unit: str = "event", train_frac: float = 0.6,
                valid_frac: float = 0.2, train_end=None, valid_end=None, search: int = 1,
                n_boot: int = 200, alert_budget: float = 0.01, seed: int = 0,
                numeric=(), categorical=(), drop=(), label_delay: str | None = None,
                select: int | None = None, variants: bool = False, preset: dict | None = None,
                on_stage=None) -> CompareResult:
    """Run the whole comparison; see the module docstring. ``events`` and ``test_events`` are paths
    or DataFrames; without ``test_events`` the test period is the latest part of ``events``.
    ``label_delay`` (``30d``, ``12h``, or a number in the time column's units): the classifiers learn
    only from labels known when the test period starts, those at least that long before it
    (``splits.delayed_labels``); the encoder, unsupervised, still trains on the whole train period.
    ``select``: also fit ``aggregates`` and ``hybrid_joint`` keeping their ``select`` most useful features
    (``LatentClassifier(select=...)``, chosen on the training rows), as models ``<name>_select<K>``,
    each compared (paired) with its unselected self. ``preset``: the encoder options a command
    applied on its own (``pipelines.cli.EVENT_PRESET``), recorded in the metrics as they are.
    ``variants``: also fit the ``VARIANTS`` of ``hybrid`` (``select`` fits ``hybrid_joint`` too).
    ``on_stage(name, seconds)`` hears of each stage as it ends (``StageClock``); the totals are in
    the metrics as ``stage_seconds``."""
    delay = parse_delay(label_delay) if label_delay is not None else None
    cfg = (config or EncoderConfig()).replace(unit=unit, seed=seed)
    clock = StageClock(on_stage)
    stages = tqdm(total=5, desc="compare", unit="stage", file=sys.stderr, disable=None, leave=False)
    with clock.stage("read"):
        source = str(events) if not isinstance(events, pd.DataFrame) else "<DataFrame>"
        frame = events if isinstance(events, pd.DataFrame) else ev.read_events(events)
        columns, kinds = list(frame.columns), {c: ev.dtype_kind(frame[c].dtype) for c in frame.columns}
        schema = ev.infer_schema(source, columns, kinds, id_col, time_col, label_col,
                                 ev.split_names(numeric), ev.split_names(categorical), ev.split_names(drop))
        test_frame = None
        if test_events is not None:
            test_source = str(test_events) if not isinstance(test_events, pd.DataFrame) else "<DataFrame>"
            test_frame = test_events if isinstance(test_events, pd.DataFrame) else ev.read_events(test_events)
            needed = [id_col, time_col, label_col, *schema.features]
            absent = [c for c in needed if c not in test_frame.columns]
            if absent:
                raise InputError(f"test table '{test_source}' lacks column '{absent[0]}' of '{source}'")
            test_frame = test_frame[needed]
        frame = frame[[id_col, time_col, label_col, *schema.features]]

    stages.set_postfix_str("split")
    with clock.stage("split"):
        split = time_split(frame, schema, unit, train_frac, valid_frac, train_end, valid_end,
                           external_test=test_frame is not None, source=source, seed=seed)
    if delay is not None and split.method != "time":
        raise InputError(f"--label-delay needs periods in time, but the entities of '{source}' were split by "
                         f"{split.method}")
    stages.update()

    stages.set_postfix_str("encoder")
    train_frame = frame[split.train_rows].reset_index(drop=True)
    with clock.stage("encoder training"):
        enc = SequenceEncoder(id_col, time_col, label_col, cfg, numeric=schema.numeric,
                              categorical=schema.categorical).fit(train_frame)
    stages.update()

    stages.set_postfix_str("features")
    with clock.stage("baseline recipe"):  # category counts of the train period: row order plays no part
        recipe = fit_recipe(enc.schema_, train_frame, enc.max_len_)
    with clock.stage("untrained twin"):
        twin = enc.untrained_twin()
    fitted = set(VARIANTS if variants else ("hybrid_joint",) if select else ())  # the variants this run fits
    recon = "hybrid_recon" in fitted
    feats = build_features(enc, recipe, frame, unit, twin=twin, clock=clock, reconstruction_error=recon)
    if test_frame is not None:
        test_feats = build_features(enc, recipe, test_frame, unit, twin=twin, clock=clock, reconstruction_error=recon)
    else:
        test_feats = feats[split.output_period == "test"].reset_index(drop=True)
    in_fit = np.isin(split.output_period, ["train", "valid"])
    fit_feats = feats[in_fit].reset_index(drop=True)
    validation, gap = split.output_period[in_fit] == "valid", None
    if delay is not None:
        test_start = split.cuts[1] if test_frame is None else float(ev.time_values(test_frame[time_col], test_source).min())
        kept, validation, gap = delayed_labels(split, in_fit, test_start, delay, train_frac, valid_frac)
        fit_feats = fit_feats[kept].reset_index(drop=True)
        gap = {"delay": label_delay, **gap,
               **{k: _time_text(gap[k], split.times_raw) for k in ("labels_until", "test_from")}}
    stages.update()

    stages.set_postfix_str("classifiers")
    y_fit = fit_feats[label_col]
    if y_fit[~validation].nunique() < 2:
        raise InputError(f"label column '{label_col}' holds a single class in the train period "
                         f"({split.describe()['train']}{', before the label delay ' + label_delay if gap else ''}); "
                         "move the cut-off or give more data")
    layout = enc.code_layout()
    cols = model_columns(fit_feats.columns, layout["surprise"] if unit == "event" else (),
                         [*layout["summary"], *layout["kernels"]])
    cols = {name: c for name, c in cols.items() if name not in VARIANTS or name in fitted}
    runs = [(name, name, None) for name in cols]  # (model, its columns, features kept)
    runs += [(f"{name}_select{select}", name, select) for name in SELECTED] if select else []
    classifiers, outputs, classes = {}, {}, None
    for name, columns, keep in runs:
        cols[name] = cols[columns]
        uses_encoder = any(c.startswith("z_") or c == "recon_error" for c in cols[name])
        uses_twin = any(c.startswith(UNTRAINED) for c in cols[name])
        base = cols["aggregates"] if name in STACKED else None
        with clock.stage(f"classifier {name}"):
            clf = LatentClassifier(search=search, seed=seed, alert_budget=alert_budget, select=keep, base_features=base)
            clf.fit(fit_feats[cols[name]], y_fit, validation=validation,
                    encoder_id=twin.encoder_id if uses_twin else enc.encoder_id if uses_encoder else None,
                    recipe=recipe.to_dict(), base_model=classifiers.get("aggregates") if base else None)
            classifiers[name], classes = clf, clf.classes_
            proba = clf.predict_proba(test_feats[cols[name]])
        outputs[name] = proba[:, 1] if len(classes) == 2 else proba
    stages.update()

    stages.set_postfix_str("evaluation")
    try:
        y_idx = label_indices(test_feats[label_col], classes)
    except InputError as exc:
        raise InputError(f"test {exc}") from None
    pairs = [("hybrid", "aggregates"), ("hybrid_joint", "aggregates"), *CONTROL_PAIRS] + ([(f"{name}_select{select}", name) for name in SELECTED] if select else [])
    with clock.stage("evaluation"):
        metrics = evaluate_models(y_idx, outputs, test_feats[id_col].to_numpy(), n_boot=n_boot, seed=seed,
                                  budget=alert_budget, pairs=pairs)
    keys = [id_col] + ([time_col] if unit == "event" else [])
    preds = test_feats[keys + [label_col]].copy()
    for name, out in outputs.items():
        if len(classes) == 2:
            preds[f"score_{name}"] = out
        else:
            preds[f"pred_{name}"] = np.asarray(classes, dtype=object)[out.argmax(1)]
    curves = {n: (y_idx, o) for n, o in outputs.items()} if len(classes) == 2 else {}
    metrics |= {"periods": split.describe(), "unit": unit, "encoder_id": enc.encoder_id,
                "untrained_encoder_id": twin.encoder_id,
                "encoder_preset": dict(preset or {}), "variants": sorted(fitted),
                "hybrid_codes": "surprise" if unit == "event" and layout["surprise"] else "all",
                "n_test": int(len(test_feats)), "n_test_entities": int(test_feats[id_col].nunique()),
                "bootstrap": {"resamples": n_boot, "by": id_col}, "alert_budget": alert_budget,
                "task": "binary" if len(classes) == 2 else "multiclass",
                "test_positive_rate": float(np.mean(y_idx == 1)) if len(classes) == 2 else None,
                "stage_seconds": {k: round(v, 3) for k, v in clock.seconds.items()},
                "label_delay": gap, "select": select and {
                    f"{name}_select{select}": {"from": len(cols[name]), "kept": classifiers[f"{name}_select{select}"].features_}
                    for name in SELECTED}}
    stages.update()
    stages.close()
    return CompareResult(metrics, preds, split, enc, classifiers, recipe, label_col, classes, curves, twin)


def _time_text(seconds: float, times_raw: pd.Series):
    """A time in seconds as the time column shows it: ISO text for timestamps, else the number."""
    if pd.api.types.is_numeric_dtype(times_raw):
        return seconds
    return pd.Timestamp(round(seconds * 1e6), unit="us", tz="UTC").isoformat()  # float seconds: to the microsecond
