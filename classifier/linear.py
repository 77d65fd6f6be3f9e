"""The linear candidate: XGBoost's linear-booster objective solved to convergence, saved as a gblinear booster.

XGBoost's ``gblinear`` minimises the logistic (or softmax) loss summed over rows plus
``reg_lambda * n / 2`` times the squared weights (its L2 penalty is per row; the bias is not
penalised). Its coordinate descent stops after a fixed number of rounds and pays a per-feature
overhead every round: on 36 rows of 2700 columns, 50 rounds took 3 s and had not converged. The same
objective is solved here by scikit-learn's L-BFGS (``LogisticRegression(C=1 / (reg_lambda n))``),
in milliseconds, and the weights are written into a native gblinear booster, so saving, loading,
prediction and explanations are XGBoost's as before.

With fewer rows than columns (tens of series, thousands of random-kernel features) the solver works
in the rows' span: the L2-penalised weights are a combination of the rows (the loss's gradient
``X^T r`` lies there, and so does the penalty's optimum), so with the thin SVD ``X = U S V^T``
the model is fitted on the ``n`` coordinates ``U S`` (n, n) and ``w = V b``, the same objective
exactly, since ``|V b| = |b|``. OSULeaf's 200 rows x 2572 columns of 6 classes: 3.1 s a fit
directly, a tenth of that in the span.
"""
from __future__ import annotations

import json
import warnings

import numpy as np
import xgboost as xgb
from sklearn.linear_model import LogisticRegression

MAX_ITER = 1000  # L-BFGS iterations; standardised inputs converge in far fewer
# L-BFGS stops when no component of the mean loss's gradient exceeds TOL. On 37 classes of 312 rows
# (2700-column codes, solved in the rows' span) 1e-6 took 392-634 iterations, 7-12 s a fit and 15
# fits a model; 1e-3 took 41-50 iterations, under 1 s, with the same held-out accuracy at every
# penalty (chosen on synthetic shapes and the aeon sets: tuning data, docs/benchmarks.md).
TOL = 1e-3


def fit_linear(params: dict, X: np.ndarray, y_idx: np.ndarray, n_classes: int,
               tol: float = TOL) -> tuple[xgb.Booster, int]:
    """A gblinear booster for ``params`` (its ``reg_lambda``, ``scale_pos_weight``, objective) fitted
    on standardised ``X`` (n, F) and class indices ``y_idx`` (n,), and the solver's iterations; ``tol``
    is L-BFGS's gradient tolerance.

    Every class of ``range(n_classes)`` gets weights, seen in ``y_idx`` or not (a class missing
    from a fold keeps zero weights and a bias far below the others)."""
    n, F = X.shape  # rows, features
    weight = np.ones(n)
    if n_classes == 2 and params.get("scale_pos_weight"):
        weight[y_idx == 1] = params["scale_pos_weight"]
    C = 1.0 / (params["reg_lambda"] * weight.sum())  # XGBoost's penalty grows with the rows' weight
    seen = np.unique(y_idx)
    groups = 1 if n_classes == 2 else n_classes
    w = np.zeros((F + 1, groups))  # (F + 1, groups): gblinear's layout, feature-major, bias last
    if len(seen) == 1:  # a fold of one class: that class, whatever the inputs
        w[F] = (30.0 if seen[0] == 1 else -30.0) if groups == 1 else np.where(np.arange(groups) == seen[0], 0.0, -30.0)
        return _booster(params, w, n_classes), 0
    X = X.astype(np.float64)
    basis = None
    if n < F:  # the rows' span: (n, F) = U S V^T, fitted on U S (n, r), weights V b
        u, sv, vt = np.linalg.svd(X, full_matrices=False)  # (n, r), (r,), (r, F)
        keep = sv > sv[0] * 1e-10 if len(sv) and sv[0] > 0 else np.zeros(len(sv), bool)
        X, basis = u[:, keep] * sv[keep], vt[keep]  # (n, r'), (r', F)
    with warnings.catch_warnings():  # tens of rows of many classes: sklearn's "could be a regression" note
        warnings.simplefilter("ignore", UserWarning)
        lr = LogisticRegression(C=C, max_iter=MAX_ITER, tol=tol).fit(X, y_idx, sample_weight=weight)
    coef = lr.coef_ if basis is None else lr.coef_ @ basis  # (1 or K, F)
    if groups == 1:
        w[:F, 0], w[F, 0] = coef[0], lr.intercept_[0]
    elif len(seen) == 2:  # a binary fit of a multi-class target: softmax margins +-half the logit
        w[:F, seen[1]], w[F, seen[1]] = coef[0] / 2, lr.intercept_[0] / 2
        w[:F, seen[0]], w[F, seen[0]] = -coef[0] / 2, -lr.intercept_[0] / 2
    else:
        w[:F, seen], w[F, seen] = coef.T, lr.intercept_
    w[F, np.setdiff1d(np.arange(groups), seen)] = -30.0  # unseen classes: probability ~0
    return _booster(params, w, n_classes), int(np.max(lr.n_iter_))


def _booster(params: dict, w: np.ndarray, n_classes: int) -> xgb.Booster:
    """A gblinear booster whose margins are ``x @ w[:-1] + w[-1]`` (``w`` is (F + 1, groups))."""
    F = len(w) - 1
    template = xgb.train(params, xgb.DMatrix(np.zeros((2, F), np.float32), label=[0, min(1, n_classes - 1)]), 1)
    model = json.loads(template.save_raw("json"))
    gb = model["learner"]["gradient_booster"]["model"]
    gb["weights"] = w.ravel().tolist()
    booster = xgb.Booster(model_file=bytearray(json.dumps(model).encode()))
    # the margin adds the objective's base score (binary: its logit); take it off the bias
    offset = booster.predict(xgb.DMatrix(np.zeros((1, F), np.float32)), output_margin=True).reshape(-1) - w[F]
    gb["weights"] = np.concatenate([w[:F].ravel(), w[F] - offset]).tolist()
    return xgb.Booster(model_file=bytearray(json.dumps(model).encode()))
