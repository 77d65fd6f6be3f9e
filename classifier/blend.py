"""A fitted classifier as one or more XGBoost boosters whose margins are averaged.

A single booster is the usual model. On small data (``estimator.SMALL_DATA``) the best tree model
and the best linear model may be blended: each predicts a margin (log-odds; per class for more
classes), the margins are averaged and turned into probabilities. The blend is one more candidate,
kept only where its out-of-fold log-loss beats both members'.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import xgboost as xgb

BLEND = "mean margin"  # the blend's rule, recorded in the manifest's params


def scaled(Xf: np.ndarray, scaling: dict | None) -> np.ndarray:
    """``Xf`` (n, F) standardised with ``scaling`` (column ``mean`` and ``std``), or unchanged when None."""
    if scaling is None:
        return Xf
    return ((Xf - np.asarray(scaling["mean"])) / np.asarray(scaling["std"])).astype(np.float32)


@dataclasses.dataclass
class Member:
    """One booster with what it needs to predict: its parameters, the standardisation of its inputs
    (linear boosters; None for trees) and its number of rounds."""
    booster: xgb.Booster
    params: dict
    scaling: dict | None
    rounds: int

    def matrix(self, Xf: np.ndarray, names: list[str]) -> xgb.DMatrix:
        """``Xf`` (n, F) as this member reads it (standardised for a linear booster)."""
        return xgb.DMatrix(scaled(Xf, self.scaling), feature_names=names)

    def margin(self, Xf: np.ndarray, names: list[str]) -> np.ndarray:
        """Margins (n,) binary or (n, K) multi-class."""
        return self.booster.predict(self.matrix(Xf, names), output_margin=True)

    def contributions(self, Xf: np.ndarray, names: list[str]) -> np.ndarray:
        """Per-feature contributions to the margin, (n, F+1) or (n, K, F+1), last = bias."""
        return self.booster.predict(self.matrix(Xf, names), pred_contribs=True)


def booster_proba(booster: xgb.Booster, dmatrix: xgb.DMatrix, n_classes: int, rounds: int | None = None) -> np.ndarray:
    """Probabilities (n, K) of one booster (its first ``rounds`` rounds when given)."""
    kw = {"iteration_range": (0, rounds)} if rounds else {}
    p = booster.predict(dmatrix, **kw)
    return np.column_stack([1 - p, p]) if n_classes == 2 else p  # (n, K)


def proba_from_margin(margin: np.ndarray, n_classes: int) -> np.ndarray:
    """Class probabilities (n, K) from margins (n,) binary or (n, K): sigmoid or softmax."""
    if n_classes == 2:
        p = 1.0 / (1.0 + np.exp(-margin.astype(np.float64)))
        return np.column_stack([1 - p, p]).astype(np.float32)
    m = margin.astype(np.float64) - margin.max(1, keepdims=True)  # (n, K), stable softmax
    e = np.exp(m)
    return (e / e.sum(1, keepdims=True)).astype(np.float32)


def margin_from_proba(proba: np.ndarray) -> np.ndarray:
    """The margins behind probabilities (n, K): binary the log-odds (n,), else log p (n, K), which
    differs from the margins by a per-row constant that softmax ignores."""
    p = np.clip(proba.astype(np.float64), 1e-7, 1 - 1e-7)
    return np.log(p[:, 1] / p[:, 0]) if p.shape[1] == 2 else np.log(p)


def blended_proba(probas: list[np.ndarray]) -> np.ndarray:
    """The blend of models given as probabilities (n, K) each: the mean of their margins, as
    probabilities (n, K). What ``predict_members`` gives for the members themselves."""
    n_classes = probas[0].shape[1]
    return proba_from_margin(np.mean([margin_from_proba(p) for p in probas], axis=0), n_classes)


def predict_members(members: list[Member], Xf: np.ndarray, names: list[str], n_classes: int) -> np.ndarray:
    """Class probabilities (n, K) of the members' mean margin."""
    if len(members) == 1:  # the booster's own transform, bit for bit what it always gave
        return booster_proba(members[0].booster, members[0].matrix(Xf, names), n_classes)
    return proba_from_margin(np.mean([m.margin(Xf, names) for m in members], axis=0), n_classes)


def contributions(members: list[Member], Xf: np.ndarray, names: list[str]) -> np.ndarray:
    """Per-feature contributions to the mean margin (contributions add up, so they average too)."""
    return np.mean([m.contributions(Xf, names) for m in members], axis=0)
