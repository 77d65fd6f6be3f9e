"""Point-in-time baseline features: the raw event (``raw_*``) and aggregates over its history (``agg_*``).

Every feature of an event uses that event and earlier events of the same entity only, over the
same window the encoder sees (the latest ``max_len`` events) plus time windows (last hour, last
day) and the entity's whole past for category novelty. Computed with vectorised prefix sums over
rows sorted by (entity, time); returned in the order the encoder writes its codes.
"""
from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd

from encoder.events import Schema
from encoder.preprocessing import category_strings, lookup, new_for_entity, times_seen_before, vocab_positions
from encoder.sequences import entity_end_rows, window_bounds

CHUNK = 20000


@dataclasses.dataclass(frozen=True)
class FeatureRecipe:
    """How baseline features are built, with the state fitted on the training period (category codes)."""

    schema: dict
    max_len: int
    short_window_s: float = 3600.0
    long_window_s: float = 86400.0
    codes: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureRecipe":
        return cls(**d)

    def raw_codes(self, c: str, strings: np.ndarray) -> np.ndarray:
        """Category codes of column ``c``'s values (strings, ``category_strings``) as float64: -1
        for values unseen in training."""
        cache = self.__dict__.setdefault("_positions", {})  # not a field: a frozen dataclass may cache
        if c not in cache:
            cache[c] = vocab_positions(self.codes.get(c, []))
        return (lookup(strings, cache[c]) - 2).astype(np.float64)  # lookup: 2 + rank, or UNKNOWN (1) -> -1


def fit_recipe(schema: Schema, frame: pd.DataFrame, max_len: int, **windows) -> FeatureRecipe:
    """Category codes for ``raw_*`` columns from training rows: rank by frequency (0 = most common)."""
    codes = {}
    for c in schema.categorical:
        counts = pd.Series(category_strings(frame[c])).value_counts()
        codes[c] = sorted(counts.index, key=lambda k: (-counts[k], k))
    return FeatureRecipe(schema.to_dict(), max_len, codes=codes, **windows)


def _entity_sums(x: np.ndarray, codes: np.ndarray, starts: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Sum of ``x`` over rows [lo, i] of each row's own entity, from per-entity running sums, so a
    row's value depends on its entity's rows up to itself only."""
    cs = pd.Series(x).groupby(codes, sort=False).cumsum().to_numpy()  # restarts at every entity
    before = np.where(lo > starts, cs[np.maximum(lo - 1, 0)], 0.0)
    return cs - before


def _time_window_start(codes: np.ndarray, t: np.ndarray, width: float) -> np.ndarray:
    """First row of the same entity whose time is within ``width`` before each row's time."""
    span = (t.max() - t.min()) + 2 * width + 1.0
    key = codes * span + (t - t.min())  # strictly grouped by entity, ordered by time within it
    return np.searchsorted(key, key - width, side="left")


def baseline_features(recipe: FeatureRecipe, frame_sorted: pd.DataFrame, times: np.ndarray, codes: np.ndarray,
                      starts: np.ndarray) -> pd.DataFrame:
    """``raw_*`` and ``agg_*`` features for every row of ``frame_sorted`` (rows sorted by entity, time).

    Parameters
    ----------
    frame_sorted : DataFrame (N, features) sorted by (entity, time)
    times : float64 (N,) seconds; codes : int64 (N,) entity codes; starts : int64 (N,) entity first rows

    Returns
    -------
    DataFrame (N, n_features), float32, in the same (sorted) row order.
    """
    schema = Schema.from_dict(recipe.schema)
    rows = np.arange(len(frame_sorted))
    first, length = window_bounds(rows, starts, recipe.max_len)  # the encoder's window of each row
    lo_short = np.maximum(_time_window_start(codes, times, recipe.short_window_s), starts)
    lo_long = np.maximum(_time_window_start(codes, times, recipe.long_window_s), starts)
    out = _time_features(times, rows, starts, first, length, lo_short, lo_long)

    for c in schema.numeric:
        x = frame_sorted[c].to_numpy(np.float64, na_value=np.nan)
        x0 = np.where(np.isnan(x), 0.0, x)
        out |= _numeric_features(c, x, x0, _window_stats(x, first, length))
        out[f"agg_{c}_sum_short"] = _entity_sums(x0, codes, starts, lo_short)
        out[f"agg_{c}_sum_long"] = _entity_sums(x0, codes, starts, lo_long)

    for c in schema.categorical:
        s = category_strings(frame_sorted[c])
        value, distinct = pd.factorize(s)
        out[f"raw_{c}"] = recipe.raw_codes(c, distinct)[value]  # -1: unseen in training
        out |= category_history(c, times_seen_before(codes, value), (rows - starts).astype(np.float64))
        new_flags = out[f"agg_{c}_is_new"]
        out[f"agg_{c}_new_short"] = _entity_sums(new_flags, codes, starts, lo_short)
        out[f"agg_{c}_new_window"] = _entity_sums(new_flags, codes, starts, first)
    return pd.DataFrame({k: v.astype(np.float32) for k, v in out.items()})


def category_history(c: str, seen: np.ndarray, before: np.ndarray) -> dict:
    """Column ``c``'s whole-history features of rows whose value was ``seen`` times before in its
    entity, which had ``before`` earlier events: the count, whether it is new there (never on an
    entity's first event) and its share of the earlier events. float64 arrays by name."""
    return {f"agg_{c}_seen_before": seen,
            f"agg_{c}_is_new": new_for_entity(seen, before),
            f"agg_{c}_share": np.where(before > 0, seen / np.maximum(before, 1), 1.0)}


@dataclasses.dataclass
class History:
    """What an entity's whole history says where only its recent rows are at hand (online scoring):
    ``before`` (M,) events before each newest row, ``seen`` {column: (M,)} times the newest row's
    value was seen before, ``new_flags`` {column: (N,)} each held row's "new for this entity" flag
    (the newest rows' entries are ignored: they follow from ``seen`` and ``before``)."""

    before: np.ndarray
    seen: dict
    new_flags: dict


def latest_features(recipe: FeatureRecipe, columns: dict, times: np.ndarray, starts: np.ndarray,
                    ends: np.ndarray, history: History) -> dict:
    """Every feature of ``baseline_features`` for rows ``ends`` only (online scoring: each entity's
    newest event after its stored tail), in NumPy alone, from the same formulas.

    ``columns`` maps each numeric column to float64 (N,) values (NaN = missing) and each categorical
    column to its strings (``category_strings``); ``times``, ``starts`` as in ``baseline_features``;
    ``ends`` (M,) the rows asked for. Rows must reach back over the encoder's window and the long
    time window; ``history`` carries the counts of the rows before them. Returns float64 (M,)
    arrays by name. The online parity test checks the two give the same scores.
    """
    schema = Schema.from_dict(recipe.schema)
    first, length = window_bounds(ends, starts, recipe.max_len)
    codes = np.cumsum(np.r_[0, np.diff(starts) != 0])  # (N,) entity number of each row
    lo_short = np.maximum(_time_window_start(codes, times, recipe.short_window_s), starts)[ends]
    lo_long = np.maximum(_time_window_start(codes, times, recipe.long_window_s), starts)[ends]
    out = _time_features(times, ends, starts[ends], first, length, lo_short, lo_long)
    out["agg_history_len"] = history.before + 1
    for c in schema.numeric:
        x = columns[c]
        x0 = np.where(np.isnan(x), 0.0, x)
        out |= _numeric_features(c, x[ends], x0[ends], _window_stats(x, first, length))
        cs = np.r_[0.0, np.cumsum(x0)]  # (N + 1,) running sum: a window's sum is a difference
        out[f"agg_{c}_sum_short"] = cs[ends + 1] - cs[lo_short]
        out[f"agg_{c}_sum_long"] = cs[ends + 1] - cs[lo_long]
    for c in schema.categorical:
        out[f"raw_{c}"] = recipe.raw_codes(c, columns[c][ends])
        out |= category_history(c, history.seen[c], history.before)
        flags = np.array(history.new_flags[c], dtype=np.float64)
        flags[ends] = out[f"agg_{c}_is_new"]
        cs = np.r_[0.0, np.cumsum(flags)]  # (N + 1,) running count of new values
        out[f"agg_{c}_new_short"] = cs[ends + 1] - cs[lo_short]
        out[f"agg_{c}_new_window"] = cs[ends + 1] - cs[first]
    return out


def _time_features(times, rows, row_starts, first, length, lo_short, lo_long) -> dict:
    """Gap, history and window length, window span, time-window counts of ``rows`` (float64)."""
    has_prev = rows > row_starts
    gap = np.maximum(times[rows] - times[np.maximum(rows - 1, 0)], 0.0)
    return {"agg_log_gap": np.where(has_prev, np.log1p(gap), -1.0),  # -1: the entity's first event
            "agg_history_len": (rows - row_starts + 1).astype(np.float64),
            "agg_window_len": length.astype(np.float64),
            "agg_window_span_log": np.log1p(times[rows] - times[first]),
            "agg_count_short": (rows - lo_short + 1).astype(np.float64),
            "agg_count_long": (rows - lo_long + 1).astype(np.float64)}


def _numeric_features(c: str, x: np.ndarray, x0: np.ndarray, st: dict) -> dict:
    """The raw value (missing as 0), its 0/1 missing flag and its window statistics. The flag is
    there whether or not this table has a missing value, so a classifier trained where values were
    missing scores a table where none are, and the other way round."""
    out = {f"raw_{c}": x0, f"raw_{c}_missing": np.isnan(x).astype(np.float64)}
    out[f"agg_{c}_mean"], out[f"agg_{c}_std"] = st["mean"], st["std"]
    out[f"agg_{c}_min"], out[f"agg_{c}_max"] = st["min"], st["max"]
    pmean, pstd, pcnt = st["prev_mean"], st["prev_std"], st["prev_count"]
    out[f"agg_{c}_prev_mean"] = np.where(pcnt > 0, pmean, x0)
    out[f"agg_{c}_zscore"] = np.where(pcnt > 1, (x0 - pmean) / (pstd + 1e-3 * (np.abs(pmean) + 1)), 0.0)
    out[f"agg_{c}_ratio"] = np.where(pcnt > 0, x0 / (np.abs(pmean) + 1e-6), 1.0)
    return out


def _window_stats(x: np.ndarray, first: np.ndarray, length: np.ndarray) -> dict:
    """Mean, std, min, max of ``x`` over each row's window, and mean, std, count of the window before
    the row; computed from the window's own values (in chunks of rows), missing values skipped."""
    n = len(first)  # rows asked for (all rows, or a subset with their own windows)
    keys = ("mean", "std", "min", "max", "prev_mean", "prev_std", "prev_count")
    out = {k: np.zeros(n) for k in keys}
    T = int(length.max())
    steps = np.arange(T)
    for i in range(0, n, CHUNK):
        f, L = first[i:i + CHUNK], length[i:i + CHUNK]
        valid = steps[None, :] < L[:, None]  # (B, T)
        vals = np.where(valid, x[np.where(valid, f[:, None] + steps[None, :], 0)], np.nan)  # (B, T)
        prev = np.where(steps[None, :] < (L - 1)[:, None], vals, np.nan)  # (B, T): without the row itself
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-missing windows give NaN, then 0
            got = (np.nanmean(vals, 1), np.nanstd(vals, 1), np.nanmin(vals, 1), np.nanmax(vals, 1),
                   np.nanmean(prev, 1), np.nanstd(prev, 1), np.sum(~np.isnan(prev), 1))
        for k, v in zip(keys, got):
            out[k][i:i + CHUNK] = np.nan_to_num(v)
    return out


def features_in_output_order(recipe: FeatureRecipe, data, unit: str) -> pd.DataFrame:
    """Baseline features of a table read by ``SequenceEncoder.prepare(..., keep_frame=True)``,
    aligned with the encoder's output: input row order (event) or one row per entity (entity)."""
    frame_sorted = data.frame.iloc[data.order].reset_index(drop=True)
    feats = baseline_features(recipe, frame_sorted, data.times, data.codes, data.starts)
    if unit == "entity":
        return feats.iloc[entity_end_rows(data.starts)].reset_index(drop=True)
    order = data.order
    inverse = np.empty_like(order)
    inverse[order] = np.arange(len(order))
    return feats.iloc[inverse].reset_index(drop=True)
