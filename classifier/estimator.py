"""LatentClassifier: XGBoost on latent codes (and any extra features), sklearn-style, saved without pickle."""
from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import xgboost as xgb
from sklearn.base import BaseEstimator, ClassifierMixin

from classifier.blend import BLEND, Member, contributions, predict_members, scaled
from classifier.data import FeatureTable, check_finite
from classifier.folds import class_order, given_or_folds, plain
from classifier.linear import fit_linear
from classifier.metrics import DEFAULT_BUDGET, binary_metrics, multiclass_metrics
from classifier.params import SMALL_DATA, is_linear
from classifier.search import Boosting, booster_params, held_out, named, search, select_features, standardisation
from classifier.stacking import fit_stacked
from classifier.thresholds import parse_policy
from encoder.io.artifacts import artifact_path, library_versions, read_manifest, sha256_file, verify_hash, write_json
from encoder.io.atomic import atomic_output
from encoder.io.errors import ArtifactError, InputError, NotFitted

FORMAT_VERSION = 4  # 2: optional input standardisation for the linear booster; 3: blends (``models``);
# 4: stacked models (each entry of ``models`` names its ``columns`` and ``stage``)
MODEL_FILE = "model.ubj"  # the first booster; a blend's second is model_1.ubj
FITTED = ("members_", "classes_", "features_", "selection_", "threshold_", "policy_", "rounds_", "params_",
          "encoder_id_", "validation_", "recipe_", "fit_info_")  # a fitted classifier's learned state


def member_file(i: int) -> str:
    """The file of a model's ``i``-th booster: ``MODEL_FILE``, then model_1.ubj, ..."""
    return MODEL_FILE if i == 0 else f"model_{i}.ubj"


def members_summary(members: list[Member]) -> tuple[int, dict]:
    """``rounds_`` and ``params_`` of a fitted model: its booster's, or for a blend the first (tree)
    member's rounds and ``{"blend": BLEND, "members": [params, ...]}``."""
    if len(members) == 1:
        return members[0].rounds, members[0].params
    return members[0].rounds, {"blend": BLEND, "members": [m.params for m in members]}


def label_indices(y, classes: list) -> np.ndarray:
    """Each label's index in ``classes``. Labels that match no class exactly are matched by their
    text when every one of them then matches one class: a CSV reads class ``1`` as a number and a
    Parquet file may hold it as ``"1"``; the classes are the same."""
    y = pd.Series(np.asarray(y))
    index = {c: i for i, c in enumerate(classes)}
    by_text = {str(c): i for i, c in enumerate(classes)}
    by_text = by_text if len(by_text) == len(classes) else {}  # texts that name two classes match none
    lookup = {u: index.get(plain(u), by_text.get(str(plain(u)))) for u in y.unique()}
    unseen = sorted((str(plain(u)) for u, i in lookup.items() if i is None), key=str)
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
    def _boosting(self) -> Boosting:
        return Boosting(self.seed, self.n_jobs, self.max_rounds, self.early_stopping)

    def _split_options(self) -> dict:
        return {"val_fraction": self.val_fraction, "cv_folds": self.cv_folds, "seed": self.seed}

    def booster_params(self, base: dict, n_classes: int, spw: float | None, n_features: int = 0, n_rows: int = 0) -> dict:
        """``search.booster_params`` with this classifier's seed and threads (the Dask trainer reads them too)."""
        return booster_params(base, n_classes, spw, n_features, n_rows, seed=self.seed, n_jobs=self.n_jobs)

    def fit(self, X: pd.DataFrame, y, *, times=None, validation=None, encoder_id: str | None = None,
            recipe: dict | None = None, base_model: LatentClassifier | None = None) -> "LatentClassifier":
        """Fit on feature frame ``X`` (n, F) and labels ``y`` (n,).

        The validation rows (early stopping, threshold, stored metrics) are ``validation`` (a boolean
        mask) if given, else the latest ``val_fraction`` of rows by ``times``, else a stratified
        seeded share. ``encoder_id`` is recorded so predictions refuse other encoders' codes;
        ``recipe`` records how non-latent feature columns were built (used by scoring jobs).
        ``times`` also orders the inner split of feature selection (``select``) when given.
        ``base_model`` (stacked models only): this model's base, already fitted on the same rows
        with the same parameters (``stacking.reusable``), used instead of fitting it again.
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
            return self.adopt(fit_stacked(self, X, y, times, validation, base_model) | {"encoder_id_": encoder_id,
                                                                              "recipe_": recipe})
        classes = class_order(y.value_counts(), self.positive_class)
        y_idx = y.map({c: i for i, c in enumerate(classes)}).to_numpy(np.int64)
        refit = len(y) < SMALL_DATA if self.refit == "auto" else bool(self.refit)
        folds, split = given_or_folds(y_idx, times, validation, refit, **self._split_options())
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
            keep, self.selection_ = select_features(Xf, y_idx, names, tr, times, len(classes), spw, small_data,
                                                    int(self.select), self._boosting(), **self._split_options())
            Xf, names = Xf[:, keep], [names[j] for j in keep]
        chosen, val_proba = search(Xf, y_idx, names, folds, len(classes), spw, small_data, self.search,
                                   self.alert_budget, self._boosting())
        threshold, val_metrics = held_out(y_idx[va], val_proba, policy, self.alert_budget)
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
        self.classes_, self.features_ = [plain(c) for c in classes], names
        self.threshold_, self.policy_ = threshold, str(policy)
        self.rounds_, self.params_ = members_summary(self.members_)
        self.encoder_id_, self.validation_, self.recipe_ = encoder_id, val_metrics, recipe
        self.fit_info_ = {"split": split, "n_train": int(len(folds[0][0]) if len(folds) == 1 else len(y)),
                          "n_validation": int(len(va)), "n_rows": len(y), "refit": refit,
                          "scale_pos_weight": spw, "search_candidates": max(1, self.search), "rounds": self.rounds_,
                          "small_data": small_data, "blend": len(self.members_) > 1}
        return self

    def adopt(self, state: dict) -> "LatentClassifier":
        """Take the learned state of a fit made elsewhere (``stacking.fit_stacked``, the Dask
        trainer): every attribute of ``FITTED``, no other."""
        if set(state) != set(FITTED):
            raise ValueError(f"a fitted state holds {sorted(FITTED)}; got {sorted(state)}")
        for name in FITTED:
            setattr(self, name, state[name])
        return self

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
