"""LatentClassifier: XGBoost on latent codes (and any extra features), sklearn-style, saved without pickle."""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold, train_test_split

from encoder.artifacts import artifact_path, library_versions, read_manifest, sha256_file, verify_hash, write_json
from encoder.atomic import atomic_output
from encoder.errors import ArtifactError, InputError, NotFitted

from .blend import (BLEND, STACK, Member, blended_proba, booster_proba, contributions, members_margin,
                    predict_members, proba_from_margin, scaled)
from .data import FeatureTable, check_finite
from .linear import fit_linear
from .metrics import DEFAULT_BUDGET, binary_metrics, clearly_lower, multiclass_metrics, row_log_loss
from .params import (CV_ROWS, EXACT_TREE_COLUMNS, NO_HOLDOUT, ROUND_CELLS, SMALL_DATA, TREE_COLUMNS, TREES_PER_ROUND,
                     TREES_WIN_BY, is_linear, search_candidates)
from .thresholds import choose_threshold, parse_policy

FORMAT_VERSION = 4  # 2: optional input standardisation for the linear booster; 3: blends (``models``);
# 4: stacked models (each entry of ``models`` names its ``columns`` and ``stage``)
MODEL_FILE = "model.ubj"  # the first booster; a blend's second is model_1.ubj
def named(booster: xgb.Booster, names: list[str]) -> xgb.Booster:
    """``booster`` with its feature names set. Boosters train on unnamed DMatrices and are named when
    done: XGBoost checks a named booster's names against its data's on every round, reading both back
    from C (40 rows of 910 columns: 7.5 of a fit's 16 s)."""
    booster.feature_names = names
    return booster


def standardisation(Xf: np.ndarray) -> dict:
    """Column means and standard deviations (1 where constant) of ``Xf`` (n, F), JSON-ready."""
    std = Xf.std(0, dtype=np.float64)
    return {"mean": Xf.mean(0, dtype=np.float64).tolist(), "std": np.where(std > 0, std, 1.0).tolist()}


def member_file(i: int) -> str:
    """The file of a model's ``i``-th booster: ``MODEL_FILE``, then model_1.ubj, ..."""
    return MODEL_FILE if i == 0 else f"model_{i}.ubj"


def members_summary(members: list[Member]) -> tuple[int, dict]:
    """``rounds_`` and ``params_`` of a fitted model: its booster's, or for a blend the first (tree)
    member's rounds and ``{"blend": BLEND, "members": [params, ...]}``."""
    if len(members) == 1:
        return members[0].rounds, members[0].params
    return members[0].rounds, {"blend": BLEND, "members": [m.params for m in members]}


def _py(value):
    return value.item() if hasattr(value, "item") else value


def label_indices(y, classes: list) -> np.ndarray:
    """Each label's index in ``classes``. Labels that match no class exactly are matched by their
    text when every one of them then matches one class: a CSV reads class ``1`` as a number and a
    Parquet file may hold it as ``"1"``; the classes are the same."""
    y = pd.Series(np.asarray(y))
    index = {c: i for i, c in enumerate(classes)}
    by_text = {str(c): i for i, c in enumerate(classes)}
    by_text = by_text if len(by_text) == len(classes) else {}  # texts that name two classes match none
    lookup = {u: index.get(_py(u), by_text.get(str(_py(u)))) for u in y.unique()}
    unseen = sorted((str(_py(u)) for u, i in lookup.items() if i is None), key=str)
    if unseen:
        raise InputError(f"labels {unseen} were not seen in training (classes: {list(map(str, classes))})")
    return y.map(lookup).to_numpy(np.int64)


class LatentClassifier(ClassifierMixin, BaseEstimator):
    """XGBoost (trees; on small data the linear booster too) with early stopping, a stored threshold
    policy, and an encoder guard.

    Each boosting round grows a small random forest (4 exact-method trees at learning rate 0.1 below
    5000 rows, ``SMALL_DATA_PARAMS``; 4 hist trees at 0.05 from there, ``LARGE_DATA_PARAMS``; a multi-class round fewer per
    class, ``TREES_PER_ROUND`` and ``ROUND_CELLS``). Below 5000 rows the linear booster on
    standardised inputs is a candidate too (``LINEAR_LAMBDAS``), and so is the blend of the best
    trees and the best linear model (their margins averaged, ``blend.py``); candidates are compared
    by out-of-fold log-loss, which still tells them apart where tens of held-out rows are ranked
    perfectly by all;
    ``fit_info_["small_data"]`` records it, and every model of a comparison gets the same rule.
    Otherwise candidates are compared by PR-AUC (binary) or log-loss.

    Parameters
    ----------
    threshold_policy : str
        Binary targets: ``max_f1``, ``precision:P``, ``recall:R``, ``fpr:F`` or ``budget:K``.
    alert_budget : float
        Share of rows reviewed, used by ``precision_at_budget``.
    positive_class : optional
        The positive class of a binary target [1 / True if the labels are 0/1, else the rarer class].
    search : int
        Number of tree candidates tried on the validation split (1 = defaults only); small data adds
        the linear ones.
    refit : "auto" | bool
        Refit on all rows with the early-stopped number of rounds ["auto": when rows < 5000].
    cv_folds : int
        When refitting rows that carry no time order (no ``times``, no ``validation``), rounds,
        candidate choice, threshold and validation metrics come from this many stratified folds'
        out-of-fold predictions instead of one ``val_fraction`` split (1 = a single split), below
        ``CV_ROWS`` (1000) rows. On small data one split leaves a handful of rows to decide everything.
    select : int, optional
        Keep only the ``select`` most useful features, chosen on the training rows alone: total
        XGBoost gain of a default model early-stopped on an inner split of those rows (by time when
        ``times`` are given). The choice is recorded (``selection_``, the manifest); the kept
        features are ``features_``, and predictions accept frames that still hold the others.
    base_features : list of str, optional
        A stacked model: first a model of these columns alone (fitted as this one would be), then
        trees on every column that start from its margins (XGBoost's ``base_margin``), early-stopped
        on the same validation rows and kept only where they lower its validation log-loss. The
        later trees can only add what the other columns say beyond the base model; on the fraud
        benchmark this told the codes' gain over the aggregates with intervals 2-4x narrower than
        one model of every column. ``fit_info_["stacked"]`` records both stages.

    Examples
    --------
    >>> clf = LatentClassifier().fit(X, y)           # doctest: +SKIP
    >>> clf.predict_frame(FeatureTable(X, [], list(X.columns)))  # doctest: +SKIP
    """

    def __init__(self, threshold_policy: str = "max_f1", alert_budget: float = DEFAULT_BUDGET,
                 positive_class=None, val_fraction: float = 0.2, search: int = 1, refit="auto",
                 cv_folds: int = 5, max_rounds: int = 2000, early_stopping: int = 50, seed: int = 0, n_jobs: int | None = None,
                 select: int | None = None, base_features: list[str] | None = None):
        self.threshold_policy = threshold_policy
        self.alert_budget = alert_budget
        self.positive_class = positive_class
        self.val_fraction = val_fraction
        self.search = search
        self.refit = refit
        self.cv_folds = cv_folds
        self.max_rounds = max_rounds
        self.early_stopping = early_stopping
        self.seed = seed
        self.n_jobs = n_jobs
        self.select = select
        self.base_features = base_features

    # ------------------------------------------------------------------ fit
    def _classes(self, counts: pd.Series) -> list:
        """Classes in model order from the label counts (``y.value_counts()``): the positive class
        of a binary target last."""
        classes = sorted(counts.index.tolist(), key=lambda v: (str(type(v)), v))
        if len(classes) != 2:
            return classes
        if self.positive_class is not None:
            if self.positive_class not in classes:
                raise InputError(f"positive class {self.positive_class!r} is not among the labels {classes}")
            pos = self.positive_class
        elif set(map(_py, classes)) <= {0, 1}:
            pos = classes[1]
        else:
            pos = counts.index[-1] if counts.iloc[0] != counts.iloc[-1] else classes[1]
        return [c for c in classes if c != pos] + [pos]

    def _folds(self, n: int, y_idx: np.ndarray, times, refit: bool) -> tuple[list, str]:
        """(train rows, validation rows) pairs and the split's name: one split, or k stratified folds."""
        if times is not None:
            order = np.argsort(np.asarray(times), kind="stable")
            cut = int(round(n * (1 - self.val_fraction)))
            return [(np.sort(order[:cut]), np.sort(order[cut:]))], "time"
        idx = np.arange(n)
        counts = np.bincount(y_idx)
        if refit and self.cv_folds > 1 and counts.min() >= self.cv_folds and n < CV_ROWS:
            kf = StratifiedKFold(self.cv_folds, shuffle=True, random_state=self.seed)
            return list(kf.split(idx, y_idx)), f"{self.cv_folds}-fold stratified"
        alone = counts[y_idx] < 2  # rows of single-row classes: trained on, never held out
        if alone.all():
            return [(idx, idx)], NO_HOLDOUT
        rest = idx[~alone]
        n_val = int(np.ceil(self.val_fraction * len(rest)))
        k = len(np.unique(y_idx[rest]))
        strat = y_idx[rest] if k <= n_val <= len(rest) - k else None  # every class on both sides fits
        tr, va = train_test_split(rest, test_size=n_val, random_state=self.seed, stratify=strat)
        if strat is None:  # a random split, then one row back to training for each class it lacks
            trained = set(y_idx[tr].tolist())
            back = [va[y_idx[va] == c][0] for c in np.unique(y_idx[va]) if c not in trained]
            tr, va = np.r_[tr, back], np.setdiff1d(va, back)
        name = "stratified" if strat is not None else "random, each class kept in training"
        if alone.any():
            name += f"; {int(alone.sum())} single-row classes trained on only"
        return [(np.sort(np.r_[tr, idx[alone]]), np.sort(va))], name

    def _split(self, y_idx: np.ndarray, times, validation, refit: bool) -> tuple[list, str]:
        """(train rows, validation rows) pairs and the split's name: the ``validation`` mask's rows
        when given, else ``_folds``."""
        if validation is None:
            return self._folds(len(y_idx), y_idx, times, refit)
        validation = np.asarray(validation, dtype=bool)
        return [(np.flatnonzero(~validation), np.flatnonzero(validation))], "given"

    def _held_out(self, y_va: np.ndarray, proba: np.ndarray, policy) -> tuple[float | None, dict]:
        """The threshold (binary; None for multi-class) and the validation metrics from held-out
        labels (n_va,) and probabilities (n_va, K)."""
        if proba.shape[1] != 2:
            return None, multiclass_metrics(y_va, proba)
        threshold = choose_threshold(y_va, proba[:, 1], policy)
        return threshold, binary_metrics(y_va, proba[:, 1], threshold, self.alert_budget)

    def booster_params(self, base: dict, n_classes: int, spw: float | None, n_features: int = 0, n_rows: int = 0) -> dict:
        """XGBoost parameters for a candidate ``base`` on ``n_rows`` x ``n_features`` of ``n_classes``
        classes (``spw``: the positive class's weight): the seed, the objective, and the column and
        forest caps of wide or many-class inputs. The Dask trainer reads them too."""
        p = dict(base) | {"seed": self.seed, "verbosity": 0}
        columns = EXACT_TREE_COLUMNS if p.get("tree_method") == "exact" else TREE_COLUMNS
        if not is_linear(p) and n_features * p.get("colsample_bytree", 1.0) > columns:
            p["colsample_bytree"] = columns / n_features  # wide inputs: each tree reads ``columns``
        if self.n_jobs:
            p["nthread"] = self.n_jobs
        if is_linear(p):
            # coordinate descent over tens or hundreds of rows: a thread pool per coordinate costs more
            # than it saves; one thread gives the same weights 2.2x faster on 2 cores (60 classes)
            p["nthread"] = 1
        if n_classes == 2:
            # Early stopping watches log-loss, not PR-AUC: a ranking metric is flat once a small
            # validation part is ranked perfectly, and stopping there leaves scores near 0.5 whose
            # threshold is noise (GunPoint: stopped at round 1-3, test accuracy 0.67-0.95).
            p |= {"objective": "binary:logistic", "eval_metric": "logloss"}
            if spw is not None:
                p["scale_pos_weight"] = spw
        else:
            p |= {"objective": "multi:softprob", "num_class": n_classes, "eval_metric": "mlogloss"}
            if "num_parallel_tree" in p:
                cells = n_classes * max(1, n_rows * n_features)  # one tree per class and round
                p["num_parallel_tree"] = max(1, min(p["num_parallel_tree"], TREES_PER_ROUND // n_classes,
                                                    ROUND_CELLS // cells))
        return p

    def fit(self, X: pd.DataFrame, y, *, times=None, validation=None, encoder_id: str | None = None,
            recipe: dict | None = None) -> "LatentClassifier":
        """Fit on feature frame ``X`` (n, F) and labels ``y`` (n,).

        The validation rows (early stopping, threshold, stored metrics) are ``validation`` (a boolean
        mask) if given, else the latest ``val_fraction`` of rows by ``times``, else a stratified
        seeded share. ``encoder_id`` is recorded so predictions refuse other encoders' codes;
        ``recipe`` records how non-latent feature columns were built (used by scoring jobs).
        ``times`` also orders the inner split of feature selection (``select``) when given.
        """
        policy = parse_policy(self.threshold_policy)
        if self.select is not None and (isinstance(self.select, bool) or int(self.select) < 1):
            raise InputError(f"select must be a positive number of features, got {self.select!r}")
        X = pd.DataFrame(X)
        y = pd.Series(np.asarray(y))
        if y.isna().any():
            raise InputError(f"labels are missing for {int(y.isna().sum())} rows")
        if y.nunique() < 2:
            raise InputError(f"labels hold a single class ({y.iloc[0]!r}): nothing to learn")
        check_finite(X, list(X.columns), "<training data>")
        if self.base_features is not None:
            return self._fit_stacked(X, y, times, validation, encoder_id, recipe)
        classes = self._classes(y.value_counts())
        y_idx = y.map({c: i for i, c in enumerate(classes)}).to_numpy(np.int64)
        refit = len(y) < SMALL_DATA if self.refit == "auto" else bool(self.refit)
        folds, split = self._split(y_idx, times, validation, refit)
        tr = folds[0][0]
        if len(np.unique(y_idx[tr])) < len(classes):
            raise InputError("the training part of the split lacks a class; give more rows or a later cut")
        va = np.concatenate([v for _, v in folds])  # rows with a held-out prediction
        Xf = X.to_numpy(np.float32)
        names = list(map(str, X.columns))
        spw = None
        if len(classes) == 2:
            pos_rate = y_idx[tr].mean()
            spw = float(np.sqrt((1 - pos_rate) / pos_rate)) if pos_rate < 0.2 else None
        small_data = len(y) < SMALL_DATA
        self.selection_ = None
        if self.select is not None and int(self.select) < len(names):
            keep, self.selection_ = self._select(Xf, y_idx, names, tr, times, len(classes), spw, small_data)
            Xf, names = Xf[:, keep], [names[j] for j in keep]
        def score(proba):  # (n_va, K) held-out probabilities -> the candidates' key, lower is better
            if small_data or len(classes) > 2:
                key = log_loss(y_idx[va], np.clip(proba, 1e-7, 1 - 1e-7), labels=range(len(classes)))
            else:
                key = -binary_metrics(y_idx[va], proba[:, 1], budget=self.alert_budget)["pr_auc"]
            return key if np.isfinite(key) else np.inf

        best, best_of_kind = None, {}
        for cand in search_candidates(self.search, self.seed, small_data):
            params = self.booster_params(cand, len(classes), spw, Xf.shape[1], len(tr))
            booster, rounds, proba = self._fit_folds(params, Xf, y_idx, names, folds, len(classes))
            entry = (score(proba[va]), [(params, booster, rounds)], proba[va])
            best = entry if best is None or entry[0] < best[0] else best
            kind = is_linear(params)
            if kind not in best_of_kind or entry[0] < best_of_kind[kind][0]:
                best_of_kind[kind] = entry
        if len(best_of_kind) == 2:
            # the best trees and the best linear model, margins averaged (``blend.py``): a candidate
            # judged on the same held-out rows (its folds' predictions blended fold by fold); the
            # trees or the blend replace the linear model only where clearly better (``TREES_WIN_BY``)
            (_, tree, p_tree), linear = best_of_kind[False], best_of_kind[True]
            proba = blended_proba([p_tree, linear[2]])
            blend = (score(proba), tree + linear[1], proba)
            lin_loss = row_log_loss(y_idx[va], linear[2])
            best = min([linear] + [e for e in (best_of_kind[False], blend)
                                   if clearly_lower(row_log_loss(y_idx[va], e[2]), lin_loss, TREES_WIN_BY)],
                       key=lambda entry: entry[0])
        _, chosen, val_proba = best
        threshold, val_metrics = self._held_out(y_idx[va], val_proba, policy)
        refit = refit or len(folds) > 1  # fold models are not kept: one model on all rows
        self.members_ = []
        for params, booster, rounds in chosen:
            # the kept booster's inputs: all rows when refitting, else the (single) split's training rows
            scaling = standardisation(Xf if refit else Xf[tr]) if is_linear(params) else None
            if refit and is_linear(params):
                booster = named(fit_linear(params, scaled(Xf, scaling), y_idx, len(classes))[0], names)
            elif refit:
                booster = named(xgb.train(params, xgb.DMatrix(Xf, label=y_idx), rounds, verbose_eval=False), names)
            elif not is_linear(params):
                # early stopping trained ``early_stopping`` rounds past the best; the kept model is
                # the best (``predict`` reads every round a booster holds)
                booster = booster[:rounds]
            self.members_.append(Member(booster, params, scaling, rounds))
        self.classes_, self.features_ = [_py(c) for c in classes], names
        self.threshold_, self.policy_ = threshold, str(policy)
        self.rounds_, self.params_ = members_summary(self.members_)
        self.encoder_id_, self.validation_, self.recipe_ = encoder_id, val_metrics, recipe
        self.fit_info_ = {"split": split, "n_train": int(len(folds[0][0]) if len(folds) == 1 else len(y)),
                          "n_validation": int(len(va)), "refit": refit,
                          "scale_pos_weight": spw, "search_candidates": max(1, self.search), "rounds": self.rounds_,
                          "small_data": small_data, "blend": len(self.members_) > 1}
        return self

    def _fit_stacked(self, X: pd.DataFrame, y: pd.Series, times, validation, encoder_id, recipe) -> "LatentClassifier":
        """``fit`` of a stacked model (``base_features``): the base model, then trees on every column
        boosted from its margins (stage 1).

        The stage-1 rounds are chosen on one split (the given validation rows, else the base's
        own single split), with a base fitted on that split's training rows; when this model
        refits (``refit``), the base is the one refitted on all rows and the stage-1 trees are
        trained again on all rows from its margins, for the chosen rounds."""
        names = list(map(str, X.columns))
        base_cols = [str(c) for c in self.base_features]
        unknown = [c for c in base_cols if c not in names]
        if not base_cols or unknown or len(set(base_cols)) < len(base_cols):
            raise InputError(f"base features must be distinct columns of the training data; unknown: {unknown or 'none'}")
        if len(base_cols) == len(names):
            raise InputError("base features are every column: no column is left for the stacked trees to add")
        if self.select is not None:
            raise InputError("feature selection (select) and a stacked model (base_features) cannot be combined")
        refit = len(y) < SMALL_DATA if self.refit == "auto" else bool(self.refit)
        split_base = clone(self).set_params(base_features=None, refit=False)
        split_base.fit(X[base_cols], y, times=times, validation=validation)
        classes = split_base.classes_
        K = len(classes)
        y_idx = y.map({c: i for i, c in enumerate(classes)}).to_numpy(np.int64)
        (tr, va), = self._split(y_idx, times, validation, refit=False)[0]  # the split base's split
        Xf = X.to_numpy(np.float32)
        Xb = X[base_cols].to_numpy(np.float32)  # (n, F_base)
        margin = members_margin(split_base.members_, Xb, base_cols)  # (n,) or (n, K): the base's, from the split's training rows
        spw = split_base.fit_info_["scale_pos_weight"]
        params = self.booster_params(search_candidates(1, self.seed, len(y) < SMALL_DATA)[0], K, spw, Xf.shape[1], len(tr))

        def dmatrix(rows, m):
            return xgb.DMatrix(Xf[rows], label=y_idx[rows], base_margin=m)  # unnamed: see ``named``

        def loss(proba):  # (n_va, K) -> validation log-loss
            return float(log_loss(y_idx[va], np.clip(proba, 1e-7, 1 - 1e-7), labels=range(K)))

        base_proba = proba_from_margin(margin[va], K)  # (n_va, K)
        dva = dmatrix(va, margin[va])
        booster = xgb.train(params, dmatrix(tr, margin[tr]), self.max_rounds, evals=[(dva, "val")],
                            early_stopping_rounds=self.early_stopping, verbose_eval=False)
        rounds = booster.best_iteration + 1
        stacked_proba = booster_proba(booster, dva, K, rounds)
        base_loss, stacked_loss = loss(base_proba), loss(stacked_proba)
        if stacked_loss >= base_loss:  # the other columns add nothing the validation rows can see
            rounds, stacked_proba = 0, base_proba
        if refit:
            base = clone(self).set_params(base_features=None).fit(X[base_cols], y, times=times, validation=validation)
            if rounds:
                booster = xgb.train(params, dmatrix(np.arange(len(y)), members_margin(base.members_, Xb, base_cols)),
                                    rounds, verbose_eval=False)
        else:
            base, booster = split_base, booster[:rounds] if rounds else None
        booster = named(booster, names) if rounds else None
        self.members_ = [dataclasses.replace(m, columns=base_cols) for m in base.members_]
        self.members_ += [Member(booster, params, None, rounds, None, 1)] if rounds else []
        self.classes_, self.features_, self.selection_ = classes, names, None
        policy = parse_policy(self.threshold_policy)
        self.threshold_, self.validation_ = self._held_out(y_idx[va], stacked_proba, policy)
        self.policy_, self.rounds_ = str(policy), base.rounds_
        self.params_ = {"stack": STACK, "base": base.params_, "stage_1": params}
        self.encoder_id_, self.recipe_ = encoder_id, recipe
        self.fit_info_ = base.fit_info_ | {"stacked": {
            "base_features": base_cols, "stage_1_rounds": rounds, "stage_1_split": "given" if validation is not None else "single",
            "validation_logloss": {"base": base_loss, "stacked": min(stacked_loss, base_loss)}}}
        return self

    def _select(self, Xf, y_idx, names, tr, times, n_classes, spw, small_data) -> tuple[list[int], dict]:
        """Columns to keep (in their order) and the record of the choice: the ``select`` largest total
        gains of a default model trained on part of the training rows ``tr`` and early-stopped on the
        rest (the latest share by ``times`` when given, else a stratified share); test and validation
        rows play no part. Columns the model never split on have gain 0; ties keep column order."""
        inner_times = None if times is None else np.asarray(times)[tr]
        (itr, iva), = self._folds(len(tr), y_idx[tr], inner_times, refit=False)[0]
        if len(np.unique(y_idx[tr][itr])) < n_classes:
            raise InputError("feature selection: the inner training part lacks a class; give more rows or drop --select")
        params = self.booster_params(search_candidates(1, self.seed, small_data)[0], n_classes, spw, Xf.shape[1], len(itr))
        booster, _, _ = self._fit_folds(params, Xf[tr], y_idx[tr], names, [(itr, iva)], n_classes)
        gain = booster.get_score(importance_type="total_gain")
        score = np.array([gain.get(n, 0.0) for n in names])
        keep = sorted(np.argsort(-score, kind="stable")[:int(self.select)].tolist())
        return keep, {"k": int(self.select), "method": "XGBoost total gain on an inner split of the training rows",
                      "inner_rows": [int(len(itr)), int(len(iva))], "candidates": names,
                      "kept": [names[j] for j in keep], "gain": {names[j]: float(score[j]) for j in keep}}

    def _fit_folds(self, params: dict, Xf: np.ndarray, y_idx: np.ndarray, names: list, folds: list,
                   n_classes: int) -> tuple:
        """Boosters on each fold (trees early-stopped, linear ones solved to convergence on inputs
        standardised with the fold's training rows): the first booster, the mean number of rounds (a
        linear booster's: solver iterations), and the held-out probabilities (n, K) (rows outside
        every validation part stay zero)."""
        proba = np.zeros((len(y_idx), n_classes), dtype=np.float32)
        rounds, first = [], None
        for tr, va in folds:
            scaling = standardisation(Xf[tr]) if is_linear(params) else None
            dva = xgb.DMatrix(scaled(Xf[va], scaling), label=y_idx[va])  # unnamed: see ``named``
            if is_linear(params):
                booster, iterations = fit_linear(params, scaled(Xf[tr], scaling), y_idx[tr], n_classes)
                rounds.append(iterations)
            else:
                dtr = xgb.DMatrix(Xf[tr], label=y_idx[tr])
                booster = xgb.train(params, dtr, self.max_rounds, evals=[(dva, "val")],
                                    early_stopping_rounds=self.early_stopping, verbose_eval=False)
                rounds.append(booster.best_iteration + 1)
            proba[va] = booster_proba(booster, dva, n_classes, None if is_linear(params) else rounds[-1])
            first = named(booster, names) if first is None else first
        return first, int(round(np.mean(rounds))), proba

    # ------------------------------------------------------------------ predict
    def _check_fitted(self) -> None:
        if not hasattr(self, "members_"):
            raise NotFitted("this LatentClassifier is not fitted yet; call fit or load first")

    def _matrix(self, X: pd.DataFrame, source: str = "<DataFrame>") -> np.ndarray:
        """The model's input (n, F) float32 from frame ``X``, its columns checked against ``features_``."""
        self._check_fitted()
        cols = list(map(str, X.columns))
        missing = [c for c in self.features_ if c not in cols]
        known = self.selection_["candidates"] if self.selection_ else self.features_
        extra = [c for c in cols if c not in known]  # columns left out by selection are accepted, unused
        if missing or extra:
            raise InputError(f"features of '{source}' differ from training: missing {missing or 'none'}, "
                             f"extra {extra or 'none'}")
        check_finite(X, self.features_, source)
        return X[self.features_].to_numpy(np.float32)

    def _predict_array(self, Xf: np.ndarray) -> np.ndarray:
        return predict_members(self.members_, Xf, self.features_, len(self.classes_))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Class probabilities (n, K), columns in ``classes_`` order."""
        return self._predict_array(self._matrix(pd.DataFrame(X)))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The most probable class of each row (binary: the positive class where its probability is at
        least 0.5); the threshold policy's alerts are ``predict_frame``'s ``decision``."""
        return self._outcome(self.predict_proba(X))[0]

    def check_encoder(self, table: FeatureTable, classifier_dir: str = "this classifier") -> None:
        """Refuse latents from another encoder than the one this classifier was trained on."""
        if self.encoder_id_ and table.encoder_id != self.encoder_id_:
            found = (table.encoder_id or "no encoder")[:12]
            raise ArtifactError(f"latents '{table.source}' come from encoder {found}, but classifier "
                                f"'{classifier_dir}' was trained on encoder {self.encoder_id_[:12]}")

    def predict_frame(self, table: FeatureTable, threshold: float | None = None, explain: int = 0) -> pd.DataFrame:
        """The predictions table: keys, ``prediction``, ``score``, then ``proba_<class>`` (multi-class)
        or ``decision`` (binary), and with ``explain=N`` the N features that pushed each score most."""
        Xf = self._matrix(table.frame[table.features], table.source)
        proba = self._predict_array(Xf)
        out = table.frame[table.keys].reset_index(drop=True).copy()
        predicted, score, decision = self._outcome(proba, threshold)
        out["prediction"] = pd.array(predicted.tolist())
        out["score"] = score
        if decision is not None:
            out["decision"] = decision
            top_class = np.ones(len(out), dtype=int)
        else:
            top_class = proba.argmax(1)
            for k, c in enumerate(self.classes_):
                out[f"proba_{c}"] = proba[:, k]
        if explain:
            out = pd.concat([out, self._explain(Xf, top_class, explain)], axis=1)
        return out

    def _outcome(self, proba: np.ndarray, threshold: float | None = None):
        """Predicted classes (n,) object, scores (n,) and decisions (n,) bool (None for multi-class).

        The prediction is the most probable class, as a classifier's prediction is for any number of
        classes: binary, the positive class where its probability (the score) is at least 0.5. The
        decision is the threshold policy's alert, at the stored threshold (or ``threshold``), which
        ``max_f1`` and the other policies place for the positive class's sake: on balanced classes
        it cost accuracy (ItalyPowerDemand, five seeds: 0.945 through the threshold, 0.951 at 0.5).
        Multi-class: argmax, with its probability as the score."""
        classes = np.asarray(self.classes_, dtype=object)
        if len(self.classes_) == 2:
            decision = proba[:, 1] >= (self.threshold_ if threshold is None else threshold)
            return classes[(proba[:, 1] >= 0.5).astype(int)], proba[:, 1], decision
        return classes[proba.argmax(1)], proba.max(1), None

    def predict_rows(self, X: np.ndarray, source: str = "the request"):
        """``predict_frame``'s prediction, score and decision (``_outcome``) for a float32 matrix
        (n, F) whose columns are ``features_`` in order: the frame-free path of online scoring."""
        self._check_fitted()
        bad = ~np.isfinite(X)
        if bad.any():
            column = self.features_[int(np.flatnonzero(bad.any(0))[0])]
            raise InputError(f"feature column '{column}' in '{source}' has {int(bad.sum())} NaN or infinite values")
        return self._outcome(self._predict_array(X.astype(np.float32)))

    def _explain(self, Xf: np.ndarray, top_class: np.ndarray, n: int) -> pd.DataFrame:
        contrib = contributions(self.members_, Xf, self.features_)  # (n, F+1) or (n, K, F+1), last = bias
        if contrib.ndim == 3:
            contrib = contrib[np.arange(len(top_class)), top_class]  # (n, F+1): the predicted class
        contrib = contrib[:, :-1]
        n = min(n, contrib.shape[1])
        top = np.argsort(-np.abs(contrib), axis=1, kind="stable")[:, :n]  # (n_rows, n)
        names = np.asarray(self.features_, dtype=object)
        cols = {}
        for j in range(n):
            cols[f"explain_{j + 1}"] = names[top[:, j]]
            cols[f"contribution_{j + 1}"] = np.take_along_axis(contrib, top[:, j:j + 1], 1)[:, 0]
        return pd.DataFrame(cols)

    def evaluate(self, X: pd.DataFrame, y) -> dict:
        """Metrics on labelled rows: binary at the stored threshold, or multi-class."""
        self._check_fitted()
        y_idx = label_indices(y, self.classes_)
        proba = self.predict_proba(X)
        if len(self.classes_) == 2:
            return binary_metrics(y_idx, proba[:, 1], self.threshold_, self.alert_budget)
        return multiclass_metrics(y_idx, proba)

    # ------------------------------------------------------------------ persistence
    def manifest(self) -> dict:
        self._check_fitted()
        return {"format": "seqae-classifier", "format_version": FORMAT_VERSION,
                "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "task": "binary" if len(self.classes_) == 2 else "multiclass",
                "features": self.features_, "classes": self.classes_,
                "positive_class": self.classes_[1] if len(self.classes_) == 2 else None,
                "encoder_id": self.encoder_id_, "feature_recipe": self.recipe_,
                "threshold_policy": {"policy": self.policy_, "threshold": self.threshold_,
                                     "alert_budget": self.alert_budget},
                "validation_metrics": self.validation_, "params": self.params_, "fit": self.fit_info_,
                "selection": self.selection_, "model": MODEL_FILE,
                "models": [{"file": member_file(i), "params": m.params, "input_scaling": m.scaling,
                            "rounds": m.rounds, "columns": m.columns, "stage": m.stage}
                           for i, m in enumerate(self.members_)],
                "versions": library_versions()}

    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the classifier directory (native UBJ models + manifest) atomically."""
        self._check_fitted()
        with atomic_output(path, overwrite, directory=True) as tmp:
            m = self.manifest()
            for member, entry in zip(self.members_, m["models"]):
                member.booster.save_model(str(tmp / entry["file"]))
                entry["sha256"] = sha256_file(tmp / entry["file"])
            # the model's identity (what the online state store keys on): its one file's hash, or
            # for a blend the hash of its members' hashes in order
            hashes = [e["sha256"] for e in m["models"]]
            m["model_sha256"] = hashes[0] if len(hashes) == 1 else hashlib.sha256(" ".join(hashes).encode()).hexdigest()
            write_json(tmp / "manifest.json", m)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> "LatentClassifier":
        """Rebuild from the directory; a corrupted or changed model file is refused."""
        path = Path(path)
        m = read_manifest(path, "classifier", FORMAT_VERSION)  # format 1 is format 2 without input_scaling
        # formats 1-2 hold one model, described at the top level
        entries = m.get("models") or [{"file": m["model"], "params": m["params"], "sha256": m["model_sha256"],
                                       "input_scaling": m.get("input_scaling"), "rounds": m["fit"]["rounds"]}]
        members = []
        for e in entries:
            file = artifact_path(path, e["file"], "model")
            verify_hash(file, e["sha256"], "model")
            booster = xgb.Booster()
            try:
                booster.load_model(str(file))
            except xgb.core.XGBoostError as exc:
                raise ArtifactError(f"model file '{file}' is corrupted: {str(exc).splitlines()[0]}") from None
            members.append(Member(booster, e["params"], e["input_scaling"], e["rounds"], e.get("columns"), e.get("stage", 0)))
        tp = m["threshold_policy"]
        clf = cls(threshold_policy=tp["policy"], alert_budget=tp["alert_budget"])
        clf.members_, clf.classes_, clf.features_ = members, m["classes"], m["features"]
        clf.threshold_, clf.policy_, clf.params_ = tp["threshold"], tp["policy"], m["params"]
        clf.encoder_id_, clf.validation_, clf.fit_info_ = m["encoder_id"], m["validation_metrics"], m["fit"]
        clf.rounds_, clf.recipe_ = m["fit"]["rounds"], m.get("feature_recipe")
        clf.selection_ = m.get("selection")
        clf.select = clf.selection_["k"] if clf.selection_ else None
        return clf
