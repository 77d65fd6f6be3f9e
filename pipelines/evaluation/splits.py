"""Time splits: train, validation and test periods, so that nothing is learnt from the future.

For ``unit="event"`` each event falls in the period of its own time. For ``unit="entity"`` an
entity falls in the period of its last event. With an external test table, the whole input is
split into train and validation periods only.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from encoder import events as ev
from encoder.io.errors import InputError

PERIODS = ("train", "valid", "test")


@dataclasses.dataclass
class TimeSplit:
    """``row_period`` (per input row) and ``output_period`` (per encoder output row) in PERIODS;
    ``output_time``: each output row's time in seconds (an event's own; an entity's last event's)."""

    row_period: np.ndarray
    output_period: np.ndarray
    cuts: tuple
    times_raw: pd.Series
    output_time: np.ndarray
    method: str = "time"

    @property
    def train_rows(self) -> np.ndarray:
        return self.row_period == "train"

    def describe(self) -> dict:
        """Each period's time range and size, for the report."""
        out = {"method": self.method}
        for p in PERIODS:
            m = self.row_period == p
            if m.any():
                t = self.times_raw[m]
                out[p] = f"{t.min()} .. {t.max()} ({int(m.sum())} events)"
        return out


def _cut(values: np.ndarray, train_frac: float, valid_frac: float, train_end, valid_end, external_test: bool):
    if train_end is not None:
        t1 = train_end
        t2 = valid_end if valid_end is not None else (np.inf if external_test else None)
        if t2 is None:
            raise InputError("--valid-end is needed with --train-end unless --test is given")
        return t1, t2
    if external_test:
        return float(np.quantile(values, train_frac / (train_frac + valid_frac), method="lower")) + 0.0, np.inf
    t1 = float(np.quantile(values, train_frac, method="lower"))
    t2 = float(np.quantile(values, train_frac + valid_frac, method="lower"))
    return t1, t2


def _periods(values: np.ndarray, t1: float, t2: float) -> np.ndarray:
    return np.where(values <= t1, "train", np.where(values <= t2, "valid", "test"))


def time_split(frame: pd.DataFrame, schema: ev.Schema, unit: str, train_frac: float = 0.6, valid_frac: float = 0.2,
               train_end=None, valid_end=None, external_test: bool = False, source: str = "<DataFrame>",
               seed: int = 0) -> TimeSplit:
    """Assign every row (and every output row of the encoder) to a period; errors say why a split fails."""
    if not (0 < train_frac < 1 and 0 < valid_frac < 1 and train_frac + valid_frac <= (1 if external_test else 0.95)):
        raise InputError(f"split fractions train {train_frac} and validation {valid_frac} leave no test period")
    times = ev.time_values(frame[schema.time_col], source)
    ends = [None if e is None else float(ev.time_values(pd.Series([e], name="--train-end/--valid-end"), "option")[0])
            for e in (train_end, valid_end)]
    codes, _ = ev.entity_codes(frame[schema.id_col], source)
    wanted = ("train", "valid") if external_test else PERIODS
    method = "time"
    if unit == "event":
        t1, t2 = _cut(times, train_frac, valid_frac, ends[0], ends[1], external_test)
        row_period = _periods(times, t1, t2)
        output_period, output_time = row_period, times
    else:
        last = np.full(codes.max() + 1, -np.inf)
        np.maximum.at(last, codes, times)
        t1, t2 = _cut(last, train_frac, valid_frac, ends[0], ends[1], external_test)
        entity_period = _periods(last, t1, t2)
        if any((entity_period == p).sum() == 0 for p in wanted) and train_end is None:
            # entities do not separate in time (e.g. series all on one clock): a seeded entity split
            rng = np.random.default_rng(seed)
            order = rng.permutation(len(last))
            k1 = int(round(train_frac * len(last) / (train_frac + valid_frac if external_test else 1)))
            k2 = len(last) if external_test else int(round((train_frac + valid_frac) * len(last)))
            entity_period = np.empty(len(last), dtype=object)
            entity_period[order[:k1]], entity_period[order[k1:k2]], entity_period[order[k2:]] = "train", "valid", "test"
            entity_period = entity_period.astype(str)
            method = "random entities (entities do not separate in time)"
        row_period, output_period, output_time = entity_period[codes], entity_period, last
    for p in wanted:
        if not (row_period == p).any():
            raise InputError(f"the time range of '{source}' is too short to split: the {p} period would be empty "
                             f"(cut-offs {t1:g}, {t2:g})")
    return TimeSplit(row_period, output_period, (t1, t2), frame[schema.time_col].reset_index(drop=True), output_time,
                     method)


def parse_delay(text: str) -> float:
    """A label delay in seconds: a duration such as ``30d``, ``12h``, ``90min``, ``2w`` (pandas
    Timedelta notation), or a plain number in the time column's own units (seconds for timestamps)."""
    try:
        value = float(text)
    except ValueError:
        try:
            value = pd.Timedelta(text).total_seconds()
        except ValueError:
            raise InputError(f"label delay '{text}' is neither a number nor a duration such as 30d or 12h") from None
    if not np.isfinite(value) or value < 0:
        raise InputError(f"label delay '{text}' must be zero or positive")
    return value


def delayed_labels(split: TimeSplit, in_fit: np.ndarray, test_start: float, delay: float,
                   train_frac: float, valid_frac: float) -> tuple[np.ndarray, np.ndarray, dict]:
    """Which classifier-fit rows keep their label when labels arrive ``delay`` seconds late: those at
    or before ``test_start - delay`` (in production, the labels known when the test period starts).

    Returns the kept mask over the fit rows, the validation mask over the kept rows (the validation
    period's rows; when the delay swallowed it, the latest ``valid_frac / (train_frac + valid_frac)``
    of the kept rows by time) and what the report says about the gap.
    """
    t_fit, period = split.output_time[in_fit], split.output_period[in_fit]
    cut = test_start - delay
    kept = t_fit <= cut
    if kept.sum() < 2:
        raise InputError(f"label delay of {delay:g} s leaves no labelled row before the test period "
                         f"(labels would end before every training row); shorten it")
    validation = period[kept] == "valid"
    method = "the validation period"
    if not validation.any() or validation.all():
        q = float(np.quantile(t_fit[kept], train_frac / (train_frac + valid_frac), method="lower"))
        validation = t_fit[kept] > q
        method = f"the latest {valid_frac / (train_frac + valid_frac):.0%} of the labelled rows"
        if not validation.any():
            raise InputError(f"label delay of {delay:g} s leaves too few labelled times to hold out a validation part")
    info = {"seconds": delay, "labels_until": cut, "test_from": test_start, "rows_labelled": int(kept.sum()),
            "rows_in_gap": int((~kept).sum()), "validation": method}
    return kept, validation, info
