"""Which rows validate a classifier: class order, one split by time or by stratified draw, or k
stratified folds on small unordered data."""
from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedKFold, train_test_split

from classifier.params import CV_ROWS, NO_HOLDOUT
from encoder.io.errors import InputError


def plain(value):
    """A numpy scalar as the Python value it holds (labels are written to JSON)."""
    return value.item() if hasattr(value, "item") else value


def class_order(counts: pd.Series, positive_class=None) -> list:
    """Classes in model order from the label counts (``y.value_counts()``): the positive class of a
    binary target last (``positive_class`` if given, else 1 / True of 0/1 labels, else the rarer)."""
    classes = sorted(counts.index.tolist(), key=lambda v: (str(type(v)), v))
    if len(classes) != 2:
        return classes
    if positive_class is not None:
        if positive_class not in classes:
            raise InputError(f"positive class {positive_class!r} is not among the labels {classes}")
        pos = positive_class
    elif set(map(plain, classes)) <= {0, 1}:
        pos = classes[1]
    else:
        pos = counts.index[-1] if counts.iloc[0] != counts.iloc[-1] else classes[1]
    return [c for c in classes if c != pos] + [pos]


def validation_folds(y_idx: np.ndarray, times, refit: bool, *, val_fraction: float, cv_folds: int,
                     seed: int) -> tuple[list, str]:
    """(train rows, validation rows) pairs and the split's name for labels ``y_idx`` (n,): the latest
    ``val_fraction`` by ``times``; else ``cv_folds`` stratified folds when refitting fewer than
    ``CV_ROWS`` rows; else one stratified (or, where classes are too small, random) seeded split.
    Rows of single-row classes are trained on and never held out."""
    n = len(y_idx)
    if times is not None:
        order = np.argsort(np.asarray(times), kind="stable")
        cut = int(round(n * (1 - val_fraction)))
        return [(np.sort(order[:cut]), np.sort(order[cut:]))], "time"
    idx = np.arange(n)
    counts = np.bincount(y_idx)
    if refit and cv_folds > 1 and counts.min() >= cv_folds and n < CV_ROWS:
        kf = StratifiedKFold(cv_folds, shuffle=True, random_state=seed)
        return list(kf.split(idx, y_idx)), f"{cv_folds}-fold stratified"
    alone = counts[y_idx] < 2  # rows of single-row classes: trained on, never held out
    if alone.all():
        return [(idx, idx)], NO_HOLDOUT
    rest = idx[~alone]
    n_val = int(np.ceil(val_fraction * len(rest)))
    k = len(np.unique(y_idx[rest]))
    strat = y_idx[rest] if k <= n_val <= len(rest) - k else None  # every class on both sides fits
    tr, va = train_test_split(rest, test_size=n_val, random_state=seed, stratify=strat)
    if strat is None:  # a random split, then one row back to training for each class it lacks
        trained = set(y_idx[tr].tolist())
        back = [va[y_idx[va] == c][0] for c in np.unique(y_idx[va]) if c not in trained]
        tr, va = np.r_[tr, back], np.setdiff1d(va, back)
    name = "stratified" if strat is not None else "random, each class kept in training"
    if alone.any():
        name += f"; {int(alone.sum())} single-row classes trained on only"
    return [(np.sort(np.r_[tr, idx[alone]]), np.sort(va))], name


def given_or_folds(y_idx: np.ndarray, times, validation, refit: bool, **how) -> tuple[list, str]:
    """The ``validation`` mask's rows when given, else ``validation_folds(..., **how)``."""
    if validation is None:
        return validation_folds(y_idx, times, refit, **how)
    validation = np.asarray(validation, dtype=bool)
    return [(np.flatnonzero(~validation), np.flatnonzero(validation))], "given"
