"""One evaluation for every model: point metrics and entity-cluster bootstrap intervals from scores.

Latent codes and raw-feature baselines are scored by the same functions, on the same test rows and
the same bootstrap resamples (accounts drawn with replacement, since one account's events are not
independent), so their intervals and the paired differences are comparable.
"""
from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from classifier.metrics import DEFAULT_BUDGET, precision_at_budget, recall_at_fpr

BINARY_METRICS = ("pr_auc", "roc_auc", "recall_at_1pct_fpr", "precision_at_budget")
MULTICLASS_METRICS = ("accuracy", "macro_f1")


def point_metrics(y: np.ndarray, score: np.ndarray, budget: float = DEFAULT_BUDGET) -> dict:
    """Binary metrics of one model's test scores (scikit-learn's definitions)."""
    return {"pr_auc": float(skm.average_precision_score(y, score)),
            "roc_auc": float(skm.roc_auc_score(y, score)),
            "recall_at_1pct_fpr": recall_at_fpr(y, score, 0.01),
            "precision_at_budget": precision_at_budget(y, score, budget)}


def weighted_metrics(y: np.ndarray, score: np.ndarray, w: np.ndarray, budget: float = DEFAULT_BUDGET) -> dict:
    """The same metrics with integer row weights (bootstrap multiplicities); ties handled as sklearn does."""
    order = np.argsort(-score, kind="stable")
    s, yy, ww = score[order], y[order].astype(np.float64), w[order].astype(np.float64)
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # end of each distinct-score group
    tp = np.cumsum(yy * ww)[last]
    fp = np.cumsum((1 - yy) * ww)[last]
    P, N = tp[-1], fp[-1]
    if P == 0 or N == 0:
        return dict.fromkeys(BINARY_METRICS, np.nan)
    recall, fpr = tp / P, fp / N
    precision = tp / np.maximum(tp + fp, 1e-12)
    ap = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    roc = float(np.trapezoid(np.r_[0.0, recall], np.r_[0.0, fpr]))
    rec_fpr = float(np.max(np.r_[0.0, recall[fpr <= 0.01]]))
    k = max(1, int(round(budget * ww.sum())))
    cw = np.cumsum(ww)
    j = int(np.searchsorted(cw, k))  # rows up to j hold the top-k weight
    top_pos = np.cumsum(yy * ww)[j] - max(cw[j] - k, 0) * yy[j]
    return {"pr_auc": ap, "roc_auc": roc, "recall_at_1pct_fpr": rec_fpr, "precision_at_budget": float(top_pos / k)}


def bootstrap_weights(groups: np.ndarray, n_boot: int, seed: int):
    """Row weights of ``n_boot`` resamples that draw whole groups (entities) with replacement."""
    rng = np.random.default_rng(seed)
    _, gidx = np.unique(groups, return_inverse=True)
    n_groups = gidx.max() + 1
    for _ in range(n_boot):
        counts = np.bincount(rng.integers(0, n_groups, n_groups), minlength=n_groups)
        yield counts[gidx]


def multiclass_point(y_idx: np.ndarray, proba: np.ndarray, w=None) -> dict:
    pred = proba.argmax(1)
    return {"accuracy": float(skm.accuracy_score(y_idx, pred, sample_weight=w)),
            "macro_f1": float(skm.f1_score(y_idx, pred, average="macro", sample_weight=w))}


def evaluate_models(y: np.ndarray, outputs: dict, groups: np.ndarray, n_boot: int = 200, seed: int = 0,
                    budget: float = DEFAULT_BUDGET, pairs=(("hybrid", "aggregates"),)) -> dict:
    """Metrics with 95% intervals for every model, and paired differences for ``pairs``.

    ``outputs[name]`` is the positive-class score (n,) for binary ``y`` (0/1), or class
    probabilities (n, K) for class indices ``y``. Returns ``{"models": {name: {metric, metric_ci}},
    "paired": {"a_vs_b": {metric: {"diff", "ci", "p_not_better"}}}}``.
    """
    binary = np.ndim(next(iter(outputs.values()))) == 1
    names = list(outputs)
    metric_names = BINARY_METRICS if binary else MULTICLASS_METRICS
    point = {m: (point_metrics(y, outputs[m], budget) if binary else multiclass_point(y, outputs[m])) for m in names}
    samples = {m: {k: [] for k in metric_names} for m in names}
    for w in bootstrap_weights(groups, n_boot, seed):
        for m in names:
            vals = weighted_metrics(y, outputs[m], w, budget) if binary else multiclass_point(y, outputs[m], w)
            for k in metric_names:
                samples[m][k].append(vals[k])
    result = {"models": {}, "paired": {}}
    for m in names:
        entry = {}
        for k in metric_names:
            arr = np.asarray(samples[m][k], dtype=float)
            entry[k] = point[m][k]
            entry[k + "_ci"] = [float(np.nanpercentile(arr, 2.5)), float(np.nanpercentile(arr, 97.5))]
        result["models"][m] = entry
    for a, b in pairs:
        if a in outputs and b in outputs:
            pair = {}
            for k in metric_names:
                d = np.asarray(samples[a][k], float) - np.asarray(samples[b][k], float)
                pair[k] = {"diff": point[a][k] - point[b][k],
                           "ci": [float(np.nanpercentile(d, 2.5)), float(np.nanpercentile(d, 97.5))],
                           "p_not_better": float(np.nanmean(d <= 0))}
            result["paired"][f"{a}_vs_{b}"] = pair
    return result
