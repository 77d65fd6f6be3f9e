"""The event table: reading Parquet/CSV, inferring the feature schema, validating, sorting by time."""
from __future__ import annotations

import dataclasses
import datetime
import os
import re
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from encoder.io.errors import InputError

#: Categorical columns with more distinct values than this (and nearly one per row) are identifiers.
IDENTIFIER_MIN_DISTINCT = 100
IDENTIFIER_DISTINCT_SHARE = 0.9


@dataclasses.dataclass(frozen=True)
class Schema:
    """Which column plays which role; ``kinds`` records each feature's dtype family at training."""

    id_col: str
    time_col: str
    label_col: str | None
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    kinds: dict = dataclasses.field(default_factory=dict, compare=False)
    time_kind: str | None = dataclasses.field(default=None, compare=False)  # "number" or "time" at training

    @property
    def features(self) -> tuple[str, ...]:
        return self.numeric + self.categorical

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["numeric"], d["categorical"] = list(self.numeric), list(self.categorical)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Schema":
        return cls(d["id_col"], d["time_col"], d.get("label_col"), tuple(d["numeric"]),
                   tuple(d["categorical"]), dict(d.get("kinds", {})), d.get("time_kind"))


def split_names(values: Iterable[str] | None) -> tuple[str, ...]:
    """Flatten repeatable, comma-separated option values: ``("a,b", "c") -> ("a", "b", "c")``."""
    out: list[str] = []
    for v in values or ():
        out.extend(p.strip() for p in str(v).split(",") if p.strip())
    return tuple(out)


# --------------------------------------------------------------------------- reading

def _dataset(path: Path, dictionary_columns: Sequence[str] = ()) -> ds.Dataset:
    """The Parquet file or directory as a dataset; ``dictionary_columns`` (string columns) are read
    dictionary-encoded, as Parquet usually stores them, and arrive in pandas as categoricals."""
    fmt = ds.ParquetFileFormat(read_options=ds.ParquetReadOptions(dictionary_columns=list(dictionary_columns))) \
        if dictionary_columns else "parquet"
    try:
        if path.is_dir():
            files = sorted(p for p in path.rglob("*.parquet") if p.is_file())
            if not files:
                raise InputError(f"'{path}' is a directory with no .parquet files")
            _check_same_columns(path, files)
            return ds.dataset([str(p) for p in files], format=fmt)
        return ds.dataset(str(path), format=fmt)
    except InputError:
        raise
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"'{path}' is not a readable Parquet file: {str(exc).splitlines()[0]}") from None


def _check_same_columns(directory: Path, files: list[Path]) -> None:
    """Every Parquet file of a directory dataset holds the first file's columns: a file without
    them (another table, or latents written into the input directory) is refused by name, never
    read as events with those columns missing."""
    import pyarrow.parquet as pq
    first = set(pq.read_schema(files[0]).names)
    for f in files[1:]:
        lacking = sorted(first - set(pq.read_schema(f).names))
        if lacking:
            raise InputError(f"Parquet file '{f}' of the directory '{directory}' lacks column '{lacking[0]}' "
                             f"that '{files[0].name}' has: is it another table?")


def _is_csv(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in {".csv", ".txt", ".gz"} and not path.name.endswith(".parquet")


def table_columns(path: str | os.PathLike) -> tuple[list[str], dict[str, str]]:
    """Column names of an event table and the dtype family of each, without reading its rows."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"file '{path}' does not exist")
    if _is_csv(path):
        try:
            head = pd.read_csv(path, nrows=1000)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise InputError(f"'{path}' is not a readable CSV file: {str(exc).splitlines()[0]}") from None
        return list(head.columns), {c: dtype_kind(head[c].dtype) for c in head.columns}
    schema = _dataset(path).schema
    kinds = {}
    for field in schema:
        kinds[field.name] = dtype_kind(field.type.to_pandas_dtype()
                                       if not pa.types.is_dictionary(field.type) else "category")
    return list(schema.names), kinds


def read_events(path: str | os.PathLike, columns: Sequence[str] | None = None,
                categorical: Sequence[str] = (), where=None) -> pd.DataFrame:
    """Read an event table (Parquet file, directory of Parquet files, or CSV), only ``columns``;
    ``where`` (a ``pyarrow.dataset`` expression, Parquet only) keeps the matching rows as the
    file is scanned, so only those are ever held.

    String columns named in ``categorical`` come from Parquet as pandas categoricals (their codes
    are read, not a string per row); numeric columns stay numeric whatever their role.
    Raises ``InputError`` naming the file if it is missing, unreadable or empty.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"file '{path}' does not exist")
    cols = list(dict.fromkeys(columns)) if columns is not None else None
    if _is_csv(path):
        try:
            df = pd.read_csv(path, usecols=cols)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as exc:
            raise InputError(f"'{path}' is not a readable CSV file: {str(exc).splitlines()[0]}") from None
    else:
        try:
            table = _dataset(path, categorical).to_table(columns=cols, filter=where)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"'{path}' is not a readable Parquet file: {str(exc).splitlines()[0]}") from None
        # each Arrow column is freed once converted, and the memory Arrow's pool kept from reading
        # goes back to the system: on a 4-million-row table that is half a GB less for what follows
        df = table.to_pandas(self_destruct=True, split_blocks=True)
        del table
        pa.default_memory_pool().release_unused()
    if len(df) == 0:
        raise InputError(f"'{path}' holds no rows")
    return df


def entity_buckets(path: str | os.PathLike, id_col: str, rows_per_bucket: int) -> list[np.ndarray] | None:
    """Entity ids of a Parquet event table split into buckets of about ``rows_per_bucket`` events
    (by a hash of the id: stable across runs), or None when one bucket holds them all or the table
    is a CSV. Only the id column is read."""
    path = Path(path)
    if _is_csv(path):
        return None
    ids = _dataset(path).to_table(columns=[id_col]).column(id_col).to_pandas()
    n_buckets = -(-len(ids) // rows_per_bucket)
    if n_buckets <= 1:
        return None
    entities = pd.Series(ids.unique())
    bucket = pd.util.hash_pandas_object(entities, index=False).to_numpy() % np.uint64(n_buckets)
    return [entities[bucket == b].to_numpy() for b in range(n_buckets) if (bucket == b).any()]


def read_bucket(path: str | os.PathLike, columns: Sequence[str], categorical: Sequence[str], id_col: str,
                ids: np.ndarray) -> pd.DataFrame:
    """The events of the entities ``ids`` (one of ``entity_buckets``), in file order."""
    return read_events(path, columns, categorical, where=ds.field(id_col).isin(pa.array(ids)))


# --------------------------------------------------------------------------- schema

def dtype_kind(dtype) -> str:
    """The family of a dtype: ``numeric``, ``bool``, ``datetime``, ``category`` or ``string``."""
    if isinstance(dtype, str) and dtype == "category":
        return "category"
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if pd.api.types.is_numeric_dtype(dtype):
        return "numeric"
    return "string"


def _require(columns: Sequence[str], name: str, option: str, path) -> None:
    if name not in columns:
        listed = ", ".join(map(str, columns))
        raise InputError(f"{option} column '{name}' is not in '{path}' (columns: {listed})")


CODE_COLUMN = re.compile(r"z_\d+")  # the latents' code columns, beside the keys and label


def infer_schema(path, columns: Sequence[str], kinds: dict[str, str], id_col: str, time_col: str,
                 label_col: str | None = None, numeric: Sequence[str] = (),
                 categorical: Sequence[str] = (), drop: Sequence[str] = ()) -> Schema:
    """Assign every non-key column a role: numeric dtypes are numeric, the rest categorical.

    ``numeric``/``categorical``/``drop`` override the inference; each named column must exist.
    """
    _require(columns, id_col, "--id", path)
    _require(columns, time_col, "--time", path)
    if label_col is not None:
        _require(columns, label_col, "--label", path)
    for option, names in (("--numeric", numeric), ("--categorical", categorical), ("--drop", drop)):
        for n in names:
            _require(columns, n, option, path)
    both = set(numeric) & set(categorical)
    if both:
        raise InputError(f"column '{sorted(both)[0]}' is given both as --numeric and --categorical")
    for option, name in (("--id", id_col), ("--time", time_col), ("--label", label_col)):
        if name is not None and CODE_COLUMN.fullmatch(str(name)):
            raise InputError(f"{option} column '{name}' of '{path}' is named like a code column (z_0, z_1, ...), "
                             "which the latents also hold: rename it")
    keys = {id_col, time_col, label_col}
    num, cat = [], []
    for c in columns:
        if c in keys or c in drop:
            continue
        if c in numeric:
            if kinds[c] not in ("numeric", "bool"):
                raise InputError(f"--numeric column '{c}' in '{path}' holds {kinds[c]} values, not numbers")
            num.append(c)
        elif c in categorical or kinds[c] != "numeric":
            cat.append(c)
        else:
            num.append(c)
    if not num and not cat:
        raise InputError(f"'{path}' has no feature columns besides the id, time and label columns")
    return Schema(id_col, time_col, label_col, tuple(num), tuple(cat),
                  {c: kinds[c] for c in num + cat}, time_kind_of(kinds[time_col]))


def check_features(df: pd.DataFrame, schema: Schema, path, training: bool) -> None:
    """Validate feature values: numerics finite and not all missing, categoricals not identifiers,
    and (at encode time) every feature present with the dtype family it had in training."""
    missing = [c for c in schema.features if c not in df.columns]
    if missing:
        raise InputError(f"feature column '{missing[0]}' seen in training is missing from '{path}'")
    for c in schema.numeric:
        kind = dtype_kind(df[c].dtype)
        if kind not in ("numeric", "bool"):
            raise InputError(f"column '{c}' in '{path}' holds {kind} values but was numeric in training")
        values = df[c].to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isinf(values).any():
            raise InputError(f"numeric column '{c}' in '{path}' holds infinite values")
        if training and np.isnan(values).all():
            raise InputError(f"numeric column '{c}' in '{path}' is entirely missing (NaN)")
    for c in schema.categorical:
        kind = dtype_kind(df[c].dtype)
        was = schema.kinds.get(c, kind)
        if not training and (kind == "numeric") != (was == "numeric"):
            raise InputError(f"column '{c}' in '{path}' holds {kind} values but held {was} values in training")
        if training:
            n_distinct = df[c].nunique(dropna=True)
            if n_distinct > IDENTIFIER_MIN_DISTINCT and n_distinct >= IDENTIFIER_DISTINCT_SHARE * len(df):
                raise InputError(
                    f"categorical column '{c}' in '{path}' has {n_distinct} distinct values in "
                    f"{len(df)} rows: it looks like an identifier; leave it out with --drop {c}")


# --------------------------------------------------------------------------- time and order

def time_kind_of(kind: str) -> str:
    """A time column's family from its dtype family: ``number`` (seconds, steps, any numbers) or
    ``time`` (timestamps, or text parsed as them)."""
    return "number" if kind in ("numeric", "bool") else "time"


def event_times(series: pd.Series, schema: Schema, path) -> np.ndarray:
    """``time_values`` of a table coded under ``schema``, refused when the column is numbers where
    training had timestamps or the other way round: epoch milliseconds read as seconds, or a step
    count read as a date, would put the event anywhere in its entity's history."""
    kind = dtype_kind(series.dtype)
    now = time_kind_of("numeric" if kind == "string" and _all_numbers(series) else kind)
    if schema.time_kind and now != schema.time_kind:
        said = {"number": "numbers", "time": "timestamps"}
        raise InputError(f"time column '{series.name}' in '{path}' holds {said[now]}, but held "
                         f"{said[schema.time_kind]} in training")
    return time_values(series, path)


def _all_numbers(series: pd.Series) -> bool:
    """Whether an object column (a JSON request's values) holds numbers only."""
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in series)


def time_values(series: pd.Series, path) -> np.ndarray:
    """Event times as float64 seconds (timestamps) or as the numbers given; errors name the value."""
    name = series.name
    if series.isna().any():
        raise InputError(f"time column '{name}' in '{path}' has {int(series.isna().sum())} missing values")
    kind = dtype_kind(series.dtype)
    if kind == "datetime":
        s = series.dt.tz_convert("UTC").dt.tz_localize(None) if series.dt.tz is not None else series
        return s.to_numpy(dtype="datetime64[ns]").astype(np.int64) / 1e9
    if kind == "numeric":
        values = series.to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            raise InputError(f"time column '{name}' in '{path}' holds infinite values")
        return values
    if kind == "bool":
        raise InputError(f"time column '{name}' in '{path}' holds booleans, not times")
    types = {type(v).__name__ for v in series.head(10000)}
    if len(types) > 1:
        raise InputError(f"time column '{name}' in '{path}' mixes types ({', '.join(sorted(types))})")
    if len(series) <= FEW_TIMES and types == {"str"}:
        few = _iso_seconds(series.tolist())
        if few is not None:
            return few
    try:
        parsed = pd.to_datetime(series, format="ISO8601", utc=True)
    except (ValueError, TypeError):
        parsed = pd.to_datetime(series, errors="coerce", utc=True, format="mixed")
        bad = series[parsed.isna()]
        value = bad.iloc[0] if len(bad) else series.iloc[0]
        raise InputError(f"time column '{name}' in '{path}': cannot parse '{value}' as a time") from None
    return time_values(parsed, path)


FEW_TIMES = 256  # a column this short is parsed by ``_iso_seconds`` when it can (a scoring request)
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?)?(?:Z|[+-]\d{2}:\d{2})?")
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_MICROSECOND = datetime.timedelta(microseconds=1)


def _iso_seconds(texts: list[str]) -> np.ndarray | None:
    """``time_values`` of a few ISO 8601 timestamps without pandas (a thousandth of its fixed cost),
    to the same float: whole microseconds since the epoch, as nanoseconds / 1e9 like the pandas
    path. None unless every text is a plain ISO timestamp (date, optional time to the microsecond,
    optional ``Z`` or ``+HH:MM`` offset; naive times are UTC, as pandas reads them with utc=True)."""
    micros = []
    for text in texts:
        if _ISO.fullmatch(text) is None:
            return None
        try:
            moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.timezone.utc)
        micros.append((moment - _EPOCH) // _MICROSECOND)
    return np.array(micros, dtype=np.int64) * 1000 / 1e9


def entity_codes(ids: pd.Series, path) -> tuple[np.ndarray, pd.Index]:
    """Integer codes of the entity ids, in sorted id order, and the sorted unique ids."""
    if ids.isna().any():
        raise InputError(f"id column '{ids.name}' in '{path}' has {int(ids.isna().sum())} missing values")
    if dtype_kind(ids.dtype) == "string":
        types = {type(v).__name__ for v in ids.head(10000)}
        if len(types) > 1:
            raise InputError(f"id column '{ids.name}' in '{path}' mixes types ({', '.join(sorted(types))})")
    codes, uniques = pd.factorize(ids, sort=True)
    return codes.astype(np.int64), pd.Index(uniques)


def stable_argsort_codes(codes: np.ndarray) -> np.ndarray:
    """Stable argsort of non-negative integer codes, one 16-bit digit at a time (least significant
    first): NumPy radix-sorts 16-bit keys in linear time, where 64-bit keys take a merge sort."""
    order = np.arange(len(codes))
    high, shift = (int(codes.max()) if len(codes) else 0), 0
    while True:
        digit = ((codes[order] >> shift) & 0xFFFF).astype(np.uint16)
        order = order[np.argsort(digit, kind="stable")]
        shift += 16
        if high >> shift == 0:
            return order


def sort_order(codes: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Row order by (entity code, time); ties keep file order, as ``np.lexsort((times, codes))``.

    Exports usually come sorted, or as a log in time order with entities interleaved: the first
    costs one check, the second one linear-time sort by entity. Other orders sort by time, then
    stably by entity.
    """
    def in_order(c, t):
        return bool(np.all((c[1:] > c[:-1]) | ((c[1:] == c[:-1]) & (t[1:] >= t[:-1]))))

    if in_order(codes, times):
        return np.arange(len(codes))
    by_entity = stable_argsort_codes(codes)
    if in_order(codes[by_entity], times[by_entity]):
        return by_entity
    by_time = np.argsort(times, kind="stable")
    return by_time[stable_argsort_codes(codes[by_time])]


def entity_starts(sorted_codes: np.ndarray) -> np.ndarray:
    """For each row of a table sorted by entity, the row where its entity's events begin."""
    n = len(sorted_codes)
    is_first = np.ones(n, dtype=bool)
    is_first[1:] = sorted_codes[1:] != sorted_codes[:-1]
    first_rows = np.flatnonzero(is_first)
    return np.repeat(first_rows, np.diff(np.append(first_rows, n))).astype(np.int64)
