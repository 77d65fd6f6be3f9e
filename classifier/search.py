"""Fitting candidates and choosing one: boosters on each fold, the candidate search (trees, linear
models, their blend) judged on held-out rows, and gain-based feature selection."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xgboost as xgb
from sklearn.metrics import log_loss

from classifier.blend import blended_proba, booster_proba, scaled
from classifier.folds import validation_folds
from classifier.linear import fit_linear
from classifier.metrics import binary_metrics, clearly_lower, multiclass_metrics, row_log_loss
from classifier.params import (
    EXACT_TREE_COLUMNS,
    ROUND_CELLS,
    ROUND_ROWS,
    TREE_COLUMNS,
    TREES_PER_ROUND,
    TREES_WIN_BY,
    is_linear,
    search_candidates,
)
from classifier.thresholds import choose_threshold
from encoder.io.errors import InputError


@dataclass(frozen=True)
class Boosting:
    """How every candidate is boosted: the seed, the thread count, the round cap and early stopping."""

    seed: int = 0
    n_jobs: int | None = None
    max_rounds: int = 2000
    early_stopping: int = 50


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


def booster_params(base: dict, n_classes: int, spw: float | None, n_features: int = 0, n_rows: int = 0, *,
                   seed: int = 0, n_jobs: int | None = None) -> dict:
    """XGBoost parameters for a candidate ``base`` on ``n_rows`` x ``n_features`` of ``n_classes``
    classes (``spw``: the positive class's weight): the seed, the objective, and the column and
    forest caps of wide or many-class inputs."""
    p = dict(base) | {"seed": seed, "verbosity": 0}
    columns = EXACT_TREE_COLUMNS if p.get("tree_method") == "exact" else TREE_COLUMNS
    if not is_linear(p) and n_features * p.get("colsample_bytree", 1.0) > columns:
        p["colsample_bytree"] = columns / n_features  # wide inputs: each tree reads ``columns``
    if n_jobs:
        p["nthread"] = n_jobs
    if is_linear(p):
        # coordinate descent over tens or hundreds of rows: a thread pool per coordinate costs more
        # than it saves; one thread gives the same weights 2.2x faster on 2 cores (60 classes)
        p["nthread"] = 1
    if n_rows and "num_parallel_tree" in p:
        p["num_parallel_tree"] = max(1, min(p["num_parallel_tree"], ROUND_ROWS // n_rows))
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


def held_out(y_va: np.ndarray, proba: np.ndarray, policy, budget: float) -> tuple[float | None, dict]:
    """The threshold (binary; None for multi-class) and the validation metrics from held-out labels
    (n_va,) and probabilities (n_va, K)."""
    if proba.shape[1] != 2:
        return None, multiclass_metrics(y_va, proba)
    threshold = choose_threshold(y_va, proba[:, 1], policy)
    return threshold, binary_metrics(y_va, proba[:, 1], threshold, budget)


def fit_folds(params: dict, Xf: np.ndarray, y_idx: np.ndarray, names: list, folds: list, n_classes: int,
              how: Boosting) -> tuple:
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
            booster = xgb.train(params, dtr, how.max_rounds, evals=[(dva, "val")],
                                early_stopping_rounds=how.early_stopping, verbose_eval=False)
            rounds.append(booster.best_iteration + 1)
        proba[va] = booster_proba(booster, dva, n_classes, None if is_linear(params) else rounds[-1])
        first = named(booster, names) if first is None else first
    return first, int(round(np.mean(rounds))), proba


def search(Xf: np.ndarray, y_idx: np.ndarray, names: list, folds: list, n_classes: int, spw: float | None,
           small_data: bool, n_candidates: int, budget: float, how: Boosting) -> tuple[list, np.ndarray]:
    """The chosen model's members ``[(params, booster, rounds), ...]`` and its held-out probabilities
    (n_va, K) on the folds' validation rows (in fold order).

    Candidates (``search_candidates``) are judged on the same held-out rows: by log-loss on small
    data or many classes, else by PR-AUC. On small data the best trees and the best linear model are
    also blended (margins averaged, ``blend.py``), and the trees or the blend replace the linear
    model only where clearly better (``TREES_WIN_BY``): the simpler model first."""
    va = np.concatenate([v for _, v in folds])  # rows with a held-out prediction
    tr = folds[0][0]

    def score(proba):  # (n_va, K) held-out probabilities -> the candidates' key, lower is better
        if small_data or n_classes > 2:
            key = log_loss(y_idx[va], np.clip(proba, 1e-7, 1 - 1e-7), labels=range(n_classes))
        else:
            key = -binary_metrics(y_idx[va], proba[:, 1], budget=budget)["pr_auc"]
        return key if np.isfinite(key) else np.inf

    best, best_of_kind = None, {}
    for cand in search_candidates(n_candidates, how.seed, small_data):
        params = booster_params(cand, n_classes, spw, Xf.shape[1], len(tr), seed=how.seed, n_jobs=how.n_jobs)
        booster, rounds, proba = fit_folds(params, Xf, y_idx, names, folds, n_classes, how)
        entry = (score(proba[va]), [(params, booster, rounds)], proba[va])
        best = entry if best is None or entry[0] < best[0] else best
        kind = is_linear(params)
        if kind not in best_of_kind or entry[0] < best_of_kind[kind][0]:
            best_of_kind[kind] = entry
    if len(best_of_kind) == 2:
        # the blend is judged on the same held-out rows (its folds' predictions blended fold by fold)
        (_, tree, p_tree), linear = best_of_kind[False], best_of_kind[True]
        proba = blended_proba([p_tree, linear[2]])
        blend = (score(proba), tree + linear[1], proba)
        lin_loss = row_log_loss(y_idx[va], linear[2])
        best = min([linear] + [e for e in (best_of_kind[False], blend)
                               if clearly_lower(row_log_loss(y_idx[va], e[2]), lin_loss, TREES_WIN_BY)],
                   key=lambda entry: entry[0])
    _, chosen, val_proba = best
    return chosen, val_proba


def select_features(Xf: np.ndarray, y_idx: np.ndarray, names: list, tr: np.ndarray, times, n_classes: int,
                    spw: float | None, small_data: bool, k: int, how: Boosting, **split) -> tuple[list[int], dict]:
    """Columns to keep (in their order) and the record of the choice: the ``k`` largest total gains
    of a default model trained on part of the training rows ``tr`` and early-stopped on the rest (the
    latest share by ``times`` when given, else a stratified share; ``split``: ``validation_folds``'
    options); test and validation rows play no part. Columns the model never split on have gain 0;
    ties keep column order."""
    inner_times = None if times is None else np.asarray(times)[tr]
    (itr, iva), = validation_folds(y_idx[tr], inner_times, refit=False, **split)[0]
    if len(np.unique(y_idx[tr][itr])) < n_classes:
        raise InputError("feature selection: the inner training part lacks a class; give more rows or drop --select")
    params = booster_params(search_candidates(1, how.seed, small_data)[0], n_classes, spw, Xf.shape[1], len(itr),
                            seed=how.seed, n_jobs=how.n_jobs)
    booster, _, _ = fit_folds(params, Xf[tr], y_idx[tr], names, [(itr, iva)], n_classes, how)
    gain = booster.get_score(importance_type="total_gain")
    score = np.array([gain.get(n, 0.0) for n in names])
    keep = sorted(np.argsort(-score, kind="stable")[:k].tolist())
    return keep, {"k": k, "method": "XGBoost total gain on an inner split of the training rows",
                  "inner_rows": [int(len(itr)), int(len(iva))], "candidates": names,
                  "kept": [names[j] for j in keep], "gain": {names[j]: float(score[j]) for j in keep}}
