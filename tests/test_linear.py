"""The linear candidate: gblinear's objective solved by L-BFGS and written into a native booster."""
import numpy as np
import pytest
import xgboost as xgb

from classifier.linear import TOL, fit_linear
from classifier.params import linear_params


def _data(n_classes, n=60, F=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, F)).astype(np.float32)
    y = (X[:, :n_classes - 1] @ np.ones(n_classes - 1) > 0).astype(np.int64) if n_classes == 2 else \
        np.argmax(X[:, :n_classes] + 0.5 * rng.normal(size=(n, n_classes)), axis=1)
    return X, y


def _params(n_classes, reg_lambda=0.1, **extra):
    obj = {"objective": "binary:logistic"} if n_classes == 2 else {"objective": "multi:softprob", "num_class": n_classes}
    return linear_params(reg_lambda) | obj | {"nthread": 1} | extra


@pytest.mark.parametrize("n_classes, n, F", [(2, 60, 5), (3, 60, 5), (2, 30, 80), (3, 30, 80)])
def test_it_reaches_the_weights_that_xgboosts_coordinate_descent_converges_to(n_classes, n, F):
    X, y = _data(n_classes, n, F)  # 30 x 80: fewer rows than columns, solved in the rows' span
    params = _params(n_classes)
    slow = xgb.train(params, xgb.DMatrix(X, label=y), 3000)  # XGBoost's own solver, run to convergence
    d = xgb.DMatrix(X)
    for tol, margin_gap, proba_gap in ((1e-6, 1e-3, 1e-4), (TOL, 0.03, 0.01)):  # tight, then the default
        booster, iterations = fit_linear(params, X, y, n_classes, tol=tol)
        assert iterations > 0 and booster.attributes() is not None
        gap = booster.predict(d, output_margin=True) - slow.predict(d, output_margin=True)  # (n,) or (n, K)
        gap = gap - gap.mean(-1, keepdims=True) if n_classes > 2 else gap  # softmax ignores a shift of every class
        assert np.abs(gap).max() < margin_gap
        assert np.abs(booster.predict(d) - slow.predict(d)).max() < proba_gap


def test_positive_weight_and_a_fold_missing_classes():
    X, y = _data(2)
    plain, _ = fit_linear(_params(2), X, y, 2)
    heavy, _ = fit_linear(_params(2, scale_pos_weight=4.0), X, y, 2)
    d = xgb.DMatrix(X)
    assert heavy.predict(d).mean() > plain.predict(d).mean()  # positives weigh more: higher scores
    X3, y3 = _data(3)
    two = np.isin(y3, [0, 2])  # class 1 absent from this fold
    booster, _ = fit_linear(_params(3), X3[two], y3[two], 3)
    p = booster.predict(xgb.DMatrix(X3))
    assert p.shape == (len(X3), 3) and p[:, 1].max() < 1e-6
    assert np.mean(p[two].argmax(1) == y3[two]) > 0.8
    one, _ = fit_linear(_params(3), X3[y3 == 2], y3[y3 == 2], 3)
    assert (one.predict(xgb.DMatrix(X3)).argmax(1) == 2).all()
