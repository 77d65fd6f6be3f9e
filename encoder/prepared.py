"""An event table read for an encoder: the needed columns validated and ordered by (entity, time),
and sequences longer than the encoder reads warned about."""
from __future__ import annotations

import dataclasses
import warnings
from typing import Sequence

import numpy as np
import pandas as pd

from encoder import events as ev
from encoder.io.errors import InputError, TruncationWarning
from encoder.sequences import truncation, truncation_message


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
