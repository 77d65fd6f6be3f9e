"""A stacked model: a base model of some columns, then trees on every column boosted from its
margins (XGBoost's ``base_margin``), kept only where they lower the base's validation log-loss."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.base import clone
from sklearn.metrics import log_loss

from classifier.blend import STACK, Member, booster_proba, members_margin, proba_from_margin
from classifier.folds import given_or_folds
from classifier.params import SMALL_DATA, search_candidates
from classifier.search import booster_params, held_out, named
from classifier.thresholds import parse_policy
from encoder.io.errors import InputError


def check_base_features(names: list[str], base_features, select) -> list[str]:
    """The base columns as text, refused unless distinct columns of the data, not all of them, and
    not combined with feature selection."""
    base_cols = [str(c) for c in base_features]
    unknown = [c for c in base_cols if c not in names]
    if not base_cols or unknown or len(set(base_cols)) < len(base_cols):
        raise InputError(f"base features must be distinct columns of the training data; unknown: {unknown or 'none'}")
    if len(base_cols) == len(names):
        raise InputError("base features are every column: no column is left for the stacked trees to add")
    if select is not None:
        raise InputError("feature selection (select) and a stacked model (base_features) cannot be combined")
    return base_cols


def base_of(clf, refit: bool):
    """The unfitted base model of stacked ``clf``: the same parameters, no base, refitted or not."""
    return clone(clf).set_params(base_features=None, refit=refit)


def reusable(fitted, clf, base_cols: list[str], n_rows: int, refit: bool) -> bool:
    """Whether ``fitted`` (a fitted ``LatentClassifier`` or None) is the base model that stacked
    ``clf`` would fit of ``base_cols`` on ``n_rows`` rows, refitted on all of them or not
    (``refit``): the same parameters, columns, row count and refit (the caller vouches that the
    rows and labels are the same)."""
    if fitted is None or not hasattr(fitted, "members_"):
        return False
    free = {"refit": None, "base_features": None}  # a base has no base of its own, and refits as told
    return (fitted.get_params() | free == clf.get_params() | free and fitted.fit_info_.get("refit") == refit
            and fitted.features_ == base_cols and fitted.fit_info_.get("n_rows") == n_rows)


def fit_stacked(clf, X: pd.DataFrame, y: pd.Series, times, validation, base_model=None) -> dict:
    """The fitted state (``members_``, ``classes_``, ...) of ``clf`` (a ``LatentClassifier`` with
    ``base_features``) on ``X`` (n, F) and ``y`` (n,): the base model, then stage-1 trees.

    The stage-1 rounds are chosen on one split (the given validation rows, else the base's own single
    split), with a base fitted on that split's training rows; when ``clf`` refits, the base is the one
    refitted on all rows and the stage-1 trees are trained again on all rows from its margins, for
    the chosen rounds. ``base_model``: a model of the base columns already fitted on these rows
    (``reusable``), taken instead of fitting the same one again (a comparison fits it as a model of
    its own); the result is the same to the bit."""
    names = list(map(str, X.columns))
    base_cols = check_base_features(names, clf.base_features, clf.select)
    refit = len(y) < SMALL_DATA if clf.refit == "auto" else bool(clf.refit)
    split_base = base_model if reusable(base_model, clf, base_cols, len(y), False) else \
        base_of(clf, False).fit(X[base_cols], y, times=times, validation=validation)
    classes = split_base.classes_
    K = len(classes)
    y_idx = y.map({c: i for i, c in enumerate(classes)}).to_numpy(np.int64)
    (tr, va), = given_or_folds(y_idx, times, validation, False, val_fraction=clf.val_fraction,
                               cv_folds=clf.cv_folds, seed=clf.seed)[0]  # the split base's split
    Xf = X.to_numpy(np.float32)
    Xb = X[base_cols].to_numpy(np.float32)  # (n, F_base)
    margin = members_margin(split_base.members_, Xb, base_cols)  # (n,) or (n, K): the base's, from the split's training rows
    spw = split_base.fit_info_["scale_pos_weight"]
    params = booster_params(search_candidates(1, clf.seed, len(y) < SMALL_DATA)[0], K, spw, Xf.shape[1], len(tr),
                            seed=clf.seed, n_jobs=clf.n_jobs)

    def dmatrix(rows, m):
        return xgb.DMatrix(Xf[rows], label=y_idx[rows], base_margin=m)  # unnamed: see ``search.named``

    def loss(proba):  # (n_va, K) -> validation log-loss
        return float(log_loss(y_idx[va], np.clip(proba, 1e-7, 1 - 1e-7), labels=range(K)))

    base_proba = proba_from_margin(margin[va], K)  # (n_va, K)
    dva = dmatrix(va, margin[va])
    booster = xgb.train(params, dmatrix(tr, margin[tr]), clf.max_rounds, evals=[(dva, "val")],
                        early_stopping_rounds=clf.early_stopping, verbose_eval=False)
    rounds = booster.best_iteration + 1
    stacked_proba = booster_proba(booster, dva, K, rounds)
    base_loss, stacked_loss = loss(base_proba), loss(stacked_proba)
    if stacked_loss >= base_loss:  # the other columns add nothing the validation rows can see
        rounds, stacked_proba = 0, base_proba
    if refit:
        base = base_model if reusable(base_model, clf, base_cols, len(y), True) else \
            base_of(clf, clf.refit).fit(X[base_cols], y, times=times, validation=validation)
        if rounds:
            booster = xgb.train(params, dmatrix(np.arange(len(y)), members_margin(base.members_, Xb, base_cols)),
                                rounds, verbose_eval=False)
    else:
        base, booster = split_base, booster[:rounds] if rounds else None
    booster = named(booster, names) if rounds else None
    members = [dataclasses.replace(m, columns=base_cols) for m in base.members_]
    members += [Member(booster, params, None, rounds, None, 1)] if rounds else []
    policy = parse_policy(clf.threshold_policy)
    threshold, validation_metrics = held_out(y_idx[va], stacked_proba, policy, clf.alert_budget)
    return {"members_": members, "classes_": classes, "features_": names, "selection_": None,
            "threshold_": threshold, "validation_": validation_metrics, "policy_": str(policy),
            "rounds_": base.rounds_, "params_": {"stack": STACK, "base": base.params_, "stage_1": params},
            "fit_info_": base.fit_info_ | {"stacked": {
                "base_features": base_cols, "stage_1_rounds": rounds,
                "stage_1_split": "given" if validation is not None else "single",
                "validation_logloss": {"base": base_loss, "stacked": min(stacked_loss, base_loss)}}}}
