"""``classifier train --engine dask``: XGBoost trained by ``xgboost.dask`` on a latents dataset.

The latents (a Parquet file or a partitioned dataset, as ``encoder encode --engine dask`` writes)
are read as a Dask DataFrame and never gathered: the training part becomes a
``DaskQuantileDMatrix``, the validation part (the latest ``val_fraction`` of rows by time when
the latents carry event times, else a seeded random share) one built on its quantiles, and
``xgboost.dask.train`` early-stops on it. Only the validation labels and scores come back to the
client, to choose the threshold and the stored metrics as ``LatentClassifier.fit`` does. The
result is an ordinary ``LatentClassifier``: the same native model file and manifest, loaded and
used by every other command.

On one machine the candidate search, folds and refit of ``LatentClassifier.fit`` are what give
small tables their accuracy; this engine is for tables too large for one process, and trains the
default parameters once.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import xgboost as xgb
import xgboost.dask  # noqa: F401  (the xgb.dask namespace)

from classifier.blend import Member
from classifier.estimator import LatentClassifier
from classifier.folds import class_order, plain
from classifier.params import search_candidates
from classifier.search import held_out
from classifier.thresholds import parse_policy
from encoder import events as ev
from encoder.io.errors import InputError


def latents_metadata(path: str | Path) -> dict:
    """The seqae metadata (encoder_id, keys) of a latents file or of the first file of a dataset."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"latents '{path}' do not exist")
    first = path if path.is_file() else next(iter(sorted(path.glob("*.parquet"))), None)
    if first is None:
        raise InputError(f"latents directory '{path}' holds no .parquet file")
    meta = pq.read_schema(first).metadata or {}
    return {k.decode(): v.decode() for k, v in meta.items() if k != b"pandas"}


def fit_dask(clf: LatentClassifier, client, latents, label: str) -> LatentClassifier:
    """Fit ``clf`` (its threshold policy, seed, ``val_fraction``, rounds) on the latents at
    ``latents`` with ``xgboost.dask``; the features are every column but the keys and the label."""
    import dask.dataframe as dd
    policy = parse_policy(clf.threshold_policy)
    meta = latents_metadata(latents)
    ddf = dd.read_parquet(str(latents))
    if label not in ddf.columns:
        raise InputError(f"label column '{label}' is not in '{latents}'")
    keys = [k for k in json.loads(meta.get("keys", "[]")) if k in ddf.columns]
    features = [c for c in ddf.columns if c not in keys and c != label]
    time_col = keys[1] if len(keys) > 1 else None
    counts = ddf[label].value_counts().compute()
    if ddf[label].isna().any().compute():
        raise InputError(f"labels are missing in '{latents}': drop those rows first")
    if len(counts) < 2:
        raise InputError(f"labels hold a single class ({counts.index[0]!r}): nothing to learn")
    classes = class_order(counts, clf.positive_class)
    index = {c: i for i, c in enumerate(classes)}
    y = ddf[label].map(index, meta=(label, "int64"))
    if time_col is not None:
        times = ddf[time_col].map_partitions(_seconds, str(latents), meta=(time_col, "float64"))
        cut = times.quantile(1 - clf.val_fraction).compute()
        is_val = times > cut
        split = "time"
    else:
        is_val = ddf[label].map_partitions(_random_share, clf.val_fraction, clf.seed, meta=(label, "bool"))
        split = "random"
    X = ddf[features].astype("float32")
    Xtr, ytr, Xva, yva = X[~is_val], y[~is_val], X[is_val], y[is_val]
    spw = None
    if len(classes) == 2:
        pos_rate = float(ytr.mean().compute())
        spw = float(np.sqrt((1 - pos_rate) / pos_rate)) if pos_rate < 0.2 else None
    params = clf.booster_params(search_candidates(1, clf.seed)[0], len(classes), spw, len(features))  # the large-data defaults
    dtrain = xgb.dask.DaskQuantileDMatrix(client, Xtr, ytr, feature_names=features)
    dval = xgb.dask.DaskQuantileDMatrix(client, Xva, yva, feature_names=features, ref=dtrain)
    out = xgb.dask.train(client, params, dtrain, num_boost_round=clf.max_rounds, evals=[(dval, "val")],
                         early_stopping_rounds=clf.early_stopping, verbose_eval=False)
    booster = out["booster"]
    rounds = booster.best_iteration + 1
    proba = xgb.dask.predict(client, booster, xgb.dask.DaskDMatrix(client, Xva, feature_names=features),
                             iteration_range=(0, rounds)).compute()
    y_val = yva.compute().to_numpy()
    proba = np.column_stack([1 - proba, proba]) if len(classes) == 2 else proba  # (n_val, K)
    threshold, val_metrics = held_out(y_val, proba, policy, clf.alert_budget)
    booster = booster[:rounds]  # the early-stopped model, as the single-process fit keeps it
    n = int(counts.sum())
    return clf.adopt({
        "members_": [Member(booster, params, None, rounds)], "classes_": [plain(c) for c in classes],
        "features_": features, "threshold_": threshold, "policy_": str(policy), "rounds_": rounds, "params_": params,
        "encoder_id_": meta.get("encoder_id"), "validation_": val_metrics, "recipe_": None,
        "selection_": None,  # --select is refused with --engine dask
        "fit_info_": {"split": split, "engine": "dask", "n_train": n - len(y_val), "n_validation": int(len(y_val)),
                      "refit": False, "scale_pos_weight": spw, "search_candidates": 1, "rounds": rounds,
                      "small_data": False}})


def _seconds(times: pd.Series, source: str) -> pd.Series:
    """One partition's event times as float seconds, by the rule every stage uses (``ev.time_values``)."""
    return pd.Series(ev.time_values(times, source), index=times.index)


def _random_share(labels: pd.Series, fraction: float, seed: int) -> pd.Series:
    """A seeded validation mask for one partition (its own stream: partition index is not known here,
    so the seed mixes in the partition's first index)."""
    first = int(labels.index[0]) if len(labels) and np.issubdtype(labels.index.dtype, np.integer) else 0
    rng = np.random.default_rng([seed, first])
    return pd.Series(rng.random(len(labels)) < fraction, index=labels.index)
