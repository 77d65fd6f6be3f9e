"""Per-event preprocessing fitted on training rows only: scalers, signed-log, time gaps, vocabularies.

The written rule for values (also in ``SequenceEncoder.fit``):

- numeric: optional signed-log ``sign(x)*log1p(|x|)``, then ``(x - center) / scale`` clipped to
  ``[-CLIP, CLIP]``; a missing value becomes 0 and, for columns that had missing values in
  training, a separate 0/1 missing-indicator channel is set;
- time: ``log1p`` of the gap to the entity's previous event (0 for its first), scaled likewise;
- categorical: the value as a string (missing is the token ``<missing>``), index ``2 + rank``
  in a vocabulary of the ``max_vocab`` most frequent values seen at least ``min_freq`` times and in
  at least ``min_entities`` entities (a value of one entity only, such as its device, is an
  identity, not a category); 1 = unknown or rare; 0 = padding;
- novelty (``novelty=True``): per categorical column a 0/1 channel "this value is new for this
  entity", from the entity's earlier events only, so a change of device is seen even when the
  device itself is unknown;
- engineered channels (differences, lags, rolling means) are computed on scaled values within each
  entity, from the event and earlier ones only.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype

from encoder.config import DataOptions
from encoder.io.errors import NotFitted

PAD, UNKNOWN = 0, 1
MISSING_TOKEN = "<missing>"
CLIP = 20.0
SKEW_FOR_LOG = 2.0


def signed_log(x: np.ndarray) -> np.ndarray:
    """``sign(x) * log1p(|x|)``: tames heavy tails, keeps sign and zero."""
    return np.sign(x) * np.log1p(np.abs(x))


def _fit_scale(values: np.ndarray, scaler: str) -> tuple[float, float]:
    v = values[~np.isnan(values)]
    if scaler == "robust":
        q25, center, q75 = np.percentile(v, [25, 50, 75])
        scale = q75 - q25 or v.max() - v.min()  # a constant bulk (e.g. regular sampling): use the range
    elif scaler == "standard":
        center, scale = v.mean(), v.std()
    else:
        center, scale = v.min(), v.max() - v.min()
    return float(center), float(scale) if scale > 0 else 1.0


def category_strings(s) -> np.ndarray:
    """A categorical column (a Series, or a list of values) as strings, missing values as
    ``<missing>`` (one rule for fit and use)."""
    if not isinstance(s, pd.Series):
        if all(type(v) is str or v is None for v in s):  # a request's values: no pandas needed
            return np.array([MISSING_TOKEN if v is None else v for v in s] or [], dtype=object)
        s = pd.Series(list(s), dtype=object)
    values = s.to_numpy(dtype=object)
    if infer_dtype(values, skipna=True) == "string":  # already strings (and missing): skip the conversion
        values = values.copy()
        values[pd.isna(values)] = MISSING_TOKEN
        return values
    return s.astype("string").fillna(MISSING_TOKEN).to_numpy(dtype=object)


def float_column(values) -> np.ndarray:
    """A numeric column (Series or array) as float64, missing values as NaN."""
    if isinstance(values, pd.Series):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(values, dtype=np.float64)


def factorize_categories(s: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes (N,) and the distinct values as strings (U,), missing as ``<missing>``; the
    string conversion touches each distinct value once, not each row."""
    if isinstance(s, np.ndarray) and s.dtype == object and all(type(v) is str for v in s):
        first = {}  # value -> its code, in order of first appearance, as pd.factorize numbers them
        codes = np.fromiter((first.setdefault(v, len(first)) for v in s), np.int64, len(s))
        return codes, np.array(list(first), dtype=object)
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    strings = category_strings(pd.Series(uniques, dtype=object))
    if (codes < 0).any():
        codes = np.where(codes < 0, len(strings), codes)
        strings = np.append(strings, MISSING_TOKEN)
    return codes.astype(np.int64), strings


def lookup(strings: np.ndarray, positions: dict) -> np.ndarray:
    """Vocabulary indices of distinct values: ``2 + rank`` for known values, ``UNKNOWN`` for the rest;
    ``positions`` maps each vocabulary value to its rank (``vocab_positions``)."""
    return np.fromiter((positions.get(s, UNKNOWN - 2) + 2 for s in strings), np.int64, len(strings))


def vocab_positions(vocab: list[str]) -> dict:
    """``{value: rank}`` of a vocabulary (or category code list)."""
    return {v: k for k, v in enumerate(vocab)}


def within_entity_shift(x: np.ndarray, starts: np.ndarray, k: int) -> np.ndarray:
    """``x`` shifted down ``k`` rows inside each entity, 0 where the entity has no row ``k`` back."""
    out = np.zeros_like(x)
    if k >= len(x):
        return out
    out[k:] = x[:-k]  # shifted across entities first,
    out[np.arange(len(x)) - k < starts] = 0  # then cleared where that crossed an entity's start
    return out


def within_entity_rolling_mean(x: np.ndarray, starts: np.ndarray, k: int) -> np.ndarray:
    """Mean over the last ``k`` rows of the same entity, the row itself included."""
    cs = np.concatenate([np.zeros((1, x.shape[1]), np.float64), np.cumsum(x, axis=0, dtype=np.float64)])
    rows = np.arange(len(x))
    lo = np.maximum(starts, rows - k + 1)
    return ((cs[rows + 1] - cs[lo]) / (rows + 1 - lo)[:, None]).astype(np.float32)


def times_seen_before(entity: np.ndarray, value: np.ndarray) -> np.ndarray:
    """How many earlier rows of the same entity held the same value, for rows grouped by entity and
    ordered by time within it (``entity``, ``value``: integer codes (N,)). float64 (N,)."""
    entity, value = np.asarray(entity, dtype=np.int64), np.asarray(value, dtype=np.int64)
    if len(value) == 0:
        return np.zeros(0)
    key = entity * (int(value.max()) + 1) + value  # one integer per (entity, value) pair
    order = np.argsort(key, kind="stable")  # each pair's rows together, in row order
    rows = np.arange(len(key))
    first = np.r_[True, key[order][1:] != key[order][:-1]]  # (N,) the first row of each pair's run
    seen = np.empty(len(key))
    seen[order] = rows - np.maximum.accumulate(np.where(first, rows, 0))  # position within the run
    return seen


def new_for_entity(seen: np.ndarray, before: np.ndarray) -> np.ndarray:
    """"New for this entity": 1.0 where a value was ``seen`` 0 times among its entity's ``before``
    earlier events, never on an entity's first event. The one definition read by the novelty
    channels, the ``agg_*_is_new`` baseline features and online scoring's stored counts."""
    return ((seen == 0) & (before > 0)).astype(np.float64)


def is_new_for_entity(codes: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """``new_for_entity`` of each sorted row's value (integer ``codes`` (N,); ``starts`` (N,) each
    row's entity's first row), as float32 (N,)."""
    rows = np.arange(len(codes))
    return new_for_entity(times_seen_before(starts, codes), rows - starts).astype(np.float32)


class Preprocessor:
    """Turns sorted event rows into model inputs; ``fit`` learns from training rows only.

    Parameters
    ----------
    config : DataOptions
        Reads ``scaler``, ``log_transform``, ``min_freq``, ``max_vocab``, ``min_entities``, ``novelty``, ``time_gap``, ``diffs``, ``lags``, ``rolling``.
    numeric, categorical : sequence of str
        Feature columns by role.
    """

    def __init__(self, config: DataOptions, numeric=(), categorical=()):
        self.config = config
        self.numeric = tuple(numeric)
        self.categorical = tuple(categorical)

    # -- fitting
    def fit(self, df: pd.DataFrame, times: np.ndarray, starts: np.ndarray) -> "Preprocessor":
        """Learn scalers and vocabularies from ``df`` (rows sorted by entity and time)."""
        cfg = self.config
        self.numeric_ = {}
        for c in self.numeric:
            v = df[c].to_numpy(dtype=np.float64, na_value=np.nan)
            finite = v[~np.isnan(v)]
            skew = pd.Series(finite).skew() if len(finite) > 2 else 0.0
            log = cfg.log_transform == "all" or (cfg.log_transform == "auto" and abs(skew or 0.0) > SKEW_FOR_LOG)
            center, scale = _fit_scale(signed_log(v) if log else v, cfg.scaler)
            self.numeric_[c] = {"log": bool(log), "center": center, "scale": scale,
                                "missing_indicator": bool(np.isnan(v).any())}
        self.gap_ = None
        if cfg.time_gap:
            self.gap_ = dict(zip(("center", "scale"), _fit_scale(self._log_gaps(times, starts), cfg.scaler)))
        self.vocab_ = {}
        self.__dict__.pop("_vocab_positions", None)  # built again from the new vocabularies
        for c in self.categorical:
            values = pd.Series(category_strings(df[c]))
            counts = values.value_counts()
            n_entities = pd.DataFrame({"v": values, "e": starts}).drop_duplicates().v.value_counts()
            kept = counts[(counts >= cfg.min_freq) & (n_entities.reindex(counts.index) >= cfg.min_entities)]
            order = sorted(kept.items(), key=lambda kv: (-kv[1], kv[0]))
            self.vocab_[c] = [k for k, _ in order[: cfg.max_vocab]]
        return self

    @staticmethod
    def _log_gaps(times: np.ndarray, starts: np.ndarray) -> np.ndarray:
        prev = within_entity_shift(times[:, None], starts, 1)[:, 0]
        gap = np.where(np.arange(len(times)) > starts, times - prev, 0.0)
        return np.log1p(np.maximum(gap, 0.0))

    # -- state
    def _check(self) -> None:
        if not hasattr(self, "vocab_"):
            raise NotFitted("this Preprocessor is not fitted yet; call fit first")

    def state_dict(self) -> dict:
        self._check()
        return {"numeric": self.numeric_, "gap": self.gap_, "vocab": self.vocab_}

    @classmethod
    def from_state(cls, config: DataOptions, state: dict) -> "Preprocessor":
        pre = cls(config, tuple(state["numeric"]), tuple(state["vocab"]))
        pre.numeric_, pre.gap_, pre.vocab_ = state["numeric"], state["gap"], state["vocab"]
        return pre

    def _positions(self, c: str) -> dict:
        """``vocab_positions(vocab_[c])``, built once."""
        cache = self.__dict__.setdefault("_vocab_positions", {})
        if c not in cache:
            cache[c] = vocab_positions(self.vocab_[c])
        return cache[c]

    # -- shapes
    @property
    def numeric_channels(self) -> list[str]:
        """Names of the numeric input channels, in order."""
        self._check()
        base = list(self.numeric)
        names = base + [f"{c}__missing" for c in base if self.numeric_[c]["missing_indicator"]]
        names += ["__time_gap"] if self.gap_ is not None else []
        names += [f"{c}__new" for c in self.categorical] if self.config.novelty else []
        names += [f"{c}__diff" for c in base] if self.config.diffs else []
        for k in self.config.lags:
            names += [f"{c}__lag{k}" for c in base]
        for k in self.config.rolling:
            names += [f"{c}__mean{k}" for c in base]
        return names

    @property
    def cardinalities(self) -> list[int]:
        """Embedding table sizes: padding + unknown + vocabulary, per categorical column."""
        self._check()
        return [len(self.vocab_[c]) + 2 for c in self.categorical]

    # -- transforming
    def transform(self, df, times: np.ndarray, starts: np.ndarray):
        """Model inputs for sorted rows of ``df``: a DataFrame, or a dict of column -> (N,) array.

        Returns
        -------
        num : float32 array (N, n_numeric_channels)
        cat : int64 array (N, n_categorical)
        """
        self._check()
        n = len(times)
        base = np.zeros((n, len(self.numeric)), np.float32)
        indicators = []
        for j, c in enumerate(self.numeric):
            st = self.numeric_[c]
            v = float_column(df[c])
            missing = np.isnan(v)
            v = (signed_log(v) if st["log"] else v) - st["center"]
            v = np.clip(v / st["scale"], -CLIP, CLIP)
            base[:, j] = np.where(missing, 0.0, v)
            if st["missing_indicator"]:
                indicators.append(missing.astype(np.float32))
        parts = [base]
        if indicators:
            parts.append(np.stack(indicators, axis=1))
        if self.gap_ is not None:
            g = (self._log_gaps(times, starts) - self.gap_["center"]) / self.gap_["scale"]
            parts.append(np.clip(g, -CLIP, CLIP).astype(np.float32)[:, None])
        factorized = {c: factorize_categories(df[c]) for c in self.categorical}
        if self.config.novelty:
            parts += [is_new_for_entity(factorized[c][0], starts)[:, None] for c in self.categorical]
        if self.config.diffs:
            has_prev = (np.arange(n) > starts)[:, None]
            parts.append(np.where(has_prev, base - within_entity_shift(base, starts, 1), 0.0))
        parts += [within_entity_shift(base, starts, k) for k in self.config.lags]
        parts += [within_entity_rolling_mean(base, starts, k) for k in self.config.rolling]
        num = np.concatenate(parts, axis=1) if len(parts) > 1 else base
        cat = np.zeros((n, len(self.categorical)), np.int64)
        for j, c in enumerate(self.categorical):
            codes, strings = factorized[c]
            cat[:, j] = lookup(strings, self._positions(c))[codes]
        return np.ascontiguousarray(num, dtype=np.float32), cat
