"""Training tables for the classifier: latent parquet files, optional extra feature columns, labels."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd

from encoder.io.errors import InputError
from encoder.io.latents import latent_columns
from encoder.io.latents import read_parquet as _read_parquet


@dataclasses.dataclass
class FeatureTable:
    """Rows to classify: ``frame`` holds the key, label (if any) and feature columns."""

    frame: pd.DataFrame
    keys: list[str]
    features: list[str]
    encoder_id: str | None = None
    time_col: str | None = None
    source: str = "<DataFrame>"


def check_finite(frame: pd.DataFrame, columns: list[str], source: str) -> None:
    """Every feature column numeric, without NaN or infinity; the error names the column."""
    dtypes = frame.dtypes[columns] if len(set(columns)) == len(columns) else None
    if dtypes is not None and all(d.kind in "fiub" for d in dtypes) and \
            np.isfinite(frame[columns].to_numpy(dtype=np.float64)).all():
        return  # the common case at once: plain numeric columns, all finite
    for c in columns:
        if not (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c])):
            raise InputError(f"feature column '{c}' in '{source}' is not numeric")
        v = frame[c].to_numpy(dtype=np.float64, na_value=np.nan)
        bad = ~np.isfinite(v)
        if bad.any():
            raise InputError(f"feature column '{c}' in '{source}' has {int(bad.sum())} NaN or infinite values")


def read_latents(path: str | Path, label: str | None = None, features: str | Path | None = None) -> FeatureTable:
    """Read a latent parquet (``z_*`` columns) and, optionally, join more feature columns on its keys.

    The keys are those the encoder recorded (id, and time for per-event codes); without that
    metadata, every column that is neither ``z_*`` nor the label is a key.
    """
    frame, meta = _read_parquet(path)
    zcols = latent_columns(frame, path)
    if len(frame) == 0:
        raise InputError(f"latent file '{path}' holds no rows")
    keys = json.loads(meta["keys"]) if "keys" in meta else [c for c in frame.columns if c not in zcols and c != label]
    keys = [k for k in keys if k in frame.columns]
    time_col = keys[1] if len(keys) > 1 else None
    table = FeatureTable(frame, keys, zcols, meta.get("encoder_id"), time_col, str(path))
    if features is not None:
        table = join_features(table, features, label)
    return table


def join_features(table: FeatureTable, path: str | Path, label: str | None = None) -> FeatureTable:
    """Add the columns of ``path`` (other than keys and label) as features, matched on the key columns."""
    extra, _ = _read_parquet(path)
    missing = [k for k in table.keys if k not in extra.columns]
    if missing:
        raise InputError(f"features file '{path}' lacks the key column '{missing[0]}'")
    new = [c for c in extra.columns if c not in table.keys and c != label and c not in table.frame.columns]
    if not new:
        raise InputError(f"features file '{path}' has no columns besides the keys")
    left = table.frame[table.keys].reset_index(drop=True)
    if len(extra) == len(left) and extra[table.keys].reset_index(drop=True).equals(left):
        joined = pd.concat([table.frame.reset_index(drop=True), extra[new].reset_index(drop=True)], axis=1)
    else:
        dup = extra.duplicated(table.keys)
        if dup.any():
            raise InputError(f"features file '{path}' has {int(dup.sum())} rows with repeated keys {table.keys}")
        joined = table.frame.merge(extra[table.keys + new], on=table.keys, how="left", indicator=True)
        unmatched = joined["_merge"] != "both"
        if unmatched.any():
            sample = joined.loc[unmatched, table.keys].head(3).to_dict("records")
            raise InputError(f"{int(unmatched.sum())} of {len(joined)} rows of '{table.source}' have no match in "
                             f"'{path}' on {table.keys}, e.g. {sample}")
        joined = joined.drop(columns="_merge")
    return dataclasses.replace(table, frame=joined, features=table.features + new)


def labels_of(table: FeatureTable, label: str, drop_unlabeled: bool = False) -> tuple[FeatureTable, pd.Series]:
    """The label column, checked: present, not missing (unless dropped), at least two classes."""
    frame = table.frame
    if label not in frame.columns:
        raise InputError(f"label column '{label}' is not in '{table.source}' (columns: {', '.join(map(str, frame.columns))})")
    missing = frame[label].isna()
    if missing.any():
        if not drop_unlabeled:
            raise InputError(f"label column '{label}' in '{table.source}' is missing for {int(missing.sum())} of "
                             f"{len(frame)} rows; pass --drop-unlabeled to skip them")
        if missing.all():
            raise InputError(f"label column '{label}' in '{table.source}' is missing for every one of its "
                             f"{len(frame)} rows: nothing to learn from")
        frame = frame[~missing].reset_index(drop=True)
        table = dataclasses.replace(table, frame=frame)
    if frame[label].nunique() < 2:
        only = frame[label].iloc[0]
        only = only.item() if hasattr(only, "item") else only
        raise InputError(f"label column '{label}' in '{table.source}' holds a single class ({only!r}): nothing to learn")
    return table, frame[label]
