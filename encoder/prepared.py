"""An event table read for an encoder: the needed columns validated and ordered by (entity, time),
sequences longer than the encoder reads warned about, and its model inputs computed on a thread of
their own while an entity encode codes (``ArraysInProgress``)."""
from __future__ import annotations

import dataclasses
import threading
import warnings
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from encoder import events as ev
from encoder.io.errors import InputError, TruncationWarning
from encoder.sequences import EventArrays, truncation, truncation_message

STRETCH_ROWS = 32768  # rows an ``ArraysInProgress`` preprocesses at a time: coding starts after the first


@dataclasses.dataclass
class PreparedEvents:
    """An event table read, validated and ordered; everything ``transform`` needs besides the model."""

    source: str
    frame: pd.DataFrame          # feature columns in input order
    ids: pd.Series               # id column, input order
    time_raw: pd.Series          # time column as given, input order
    labels: pd.Series | None     # label column, input order
    order: np.ndarray            # input row of each sorted row
    times: np.ndarray            # float seconds, sorted
    codes: np.ndarray            # entity code of each sorted row (codes follow sorted ids)
    starts: np.ndarray           # first sorted row of each sorted row's entity


class ArraysInProgress:
    """Sorted rows whose model inputs a thread of their own computes a stretch of whole entities at a
    time, in order, while the caller codes the stretches already done: on a few cores an entity
    encode would otherwise spend a fifth of its time preprocessing with one core idle. ``rows(a, b)``
    waits for rows up to ``b`` and equals the whole table's ``EventArrays.rows(a, b)``: preprocessing
    reads each event and the earlier events of its entity, nothing else. An error in preprocessing is
    raised by every ``rows`` call that waits for it; ``close`` stops the thread after its stretch."""

    def __init__(self, frame: pd.DataFrame, times: np.ndarray, starts: np.ndarray, transform: Callable):
        self.starts = starts
        self._ready, self._error, self._stop = 0, None, False
        self._done = threading.Condition()
        self._num = self._cat = None  # (N, F_num) float32, (N, F_cat) int64 once the first stretch is done
        self._thread = threading.Thread(target=self._run, args=(frame, times, transform, STRETCH_ROWS), daemon=True)
        self._thread.start()

    def __len__(self) -> int:
        return len(self.starts)

    def _run(self, frame: pd.DataFrame, times: np.ndarray, transform: Callable, stretch_rows: int) -> None:
        n, first = len(self.starts), 0
        try:
            while first < n and not self._stop:
                stop = n if first + stretch_rows >= n else int(self.starts[first + stretch_rows])  # whole entities
                stop = stop if stop > first else int(np.searchsorted(self.starts, first, side="right"))
                starts = self.starts[first:stop] - first
                num, cat = transform(frame.iloc[first:stop], times[first:stop], starts)
                if self._num is None:
                    self._num = np.empty((n, num.shape[1]), np.float32)
                    self._cat = np.empty((n, cat.shape[1]), np.int64)
                self._num[first:stop], self._cat[first:stop] = num, cat
                with self._done:
                    self._ready = first = stop
                    self._done.notify_all()
        except BaseException as exc:  # raised where the rows are asked for
            self._error = exc
        finally:
            with self._done:
                self._stop = True  # nothing more will be ready
                self._done.notify_all()

    def rows(self, first: int, stop: int) -> EventArrays:
        """The model inputs of rows ``first`` to ``stop - 1``, whole entities (``starts`` from ``first``)."""
        with self._done:
            self._done.wait_for(lambda: self._ready >= stop or self._stop)
            if self._ready < stop:
                raise self._error or RuntimeError("these rows were not preprocessed: the arrays were closed first")
        return EventArrays(self._num[first:stop], self._cat[first:stop], self.starts[first:stop] - first)

    def close(self) -> None:
        """Stop preprocessing after the current stretch and wait for the thread."""
        self._stop = True
        self._thread.join()


def source_name(events) -> str:
    return "<DataFrame>" if isinstance(events, pd.DataFrame) else str(events)


def columns_and_kinds(events) -> tuple[list[str], dict[str, str]]:
    if isinstance(events, pd.DataFrame):
        return list(events.columns), {c: ev.dtype_kind(events[c].dtype) for c in events.columns}
    return ev.table_columns(events)


def _read(events, columns: list[str], categorical: Sequence[str]) -> pd.DataFrame:
    if isinstance(events, pd.DataFrame):
        if len(events) == 0:
            raise InputError("the events DataFrame holds no rows")
        return events[columns].reset_index(drop=True)
    return ev.read_events(events, columns, categorical)


def prepare_events(events, schema: ev.Schema, training: bool, source: str | None = None) -> PreparedEvents:
    """Read the needed columns of ``events`` (path or DataFrame), validate them, sort by entity/time;
    ``source`` names the input in errors [the path, or "<DataFrame>"]."""
    source = source or source_name(events)
    columns, _ = columns_and_kinds(events)
    for col, option in ((schema.id_col, "--id"), (schema.time_col, "--time")):
        if col not in columns:
            raise InputError(f"{option} column '{col}' is not in '{source}' (columns: {', '.join(map(str, columns))})")
    missing = [c for c in schema.features if c not in columns]
    if missing and len(missing) == len(schema.features):
        raise InputError(f"'{source}' shares no feature column with the encoder's schema "
                         f"(expects {', '.join(schema.features)})")
    if missing:
        raise InputError(f"feature column '{missing[0]}' seen in training is missing from '{source}'")
    has_label = schema.label_col is not None and schema.label_col in columns
    wanted = [schema.id_col, schema.time_col, *([schema.label_col] if has_label else []), *schema.features]
    df = _read(events, wanted, schema.categorical)
    ev.check_features(df, schema, source, training)
    times_in = ev.event_times(df[schema.time_col], schema, source)
    codes_in, _ = ev.entity_codes(df[schema.id_col], source)
    order = ev.sort_order(codes_in, times_in)
    codes = codes_in[order]
    return PreparedEvents(source=source, frame=df[list(schema.features)], ids=df[schema.id_col],
                          time_raw=df[schema.time_col], labels=df[schema.label_col] if has_label else None,
                          order=order, times=times_in[order], codes=codes, starts=ev.entity_starts(codes))


def warn_truncation(sizes: np.ndarray, max_len: int, unit: str, source: str) -> dict:
    """``truncation`` of entities of ``sizes`` events, warned (``TruncationWarning``) when any lost events."""
    info = truncation(sizes, max_len, unit)
    message = truncation_message(info, source)
    if message:
        warnings.warn(message, TruncationWarning, stacklevel=3)
    return info
