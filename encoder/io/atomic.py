"""Atomic outputs: everything is written under a temporary name and renamed when complete."""
from __future__ import annotations

import contextlib
import os
import shutil
import time
import uuid
from pathlib import Path

import numpy as np

from encoder.io.errors import InputError


def check_output(path: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse an existing output unless ``overwrite``; return the path as a ``Path``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(f"output '{path}' exists already; pass --overwrite to replace it")
    if not path.parent.exists():
        raise InputError(f"output '{path}': directory '{path.parent}' does not exist")
    return path


def check_apart(out: str | os.PathLike, events) -> None:
    """Refuse an output inside the input directory: a second run would read it back as events."""
    if not isinstance(events, (str, os.PathLike)) or not Path(events).is_dir():
        return
    if Path(out).resolve().is_relative_to(Path(events).resolve()):
        raise InputError(f"output '{out}' is inside the input directory '{events}': a later run over that "
                         "directory would read it as events; write it elsewhere")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def replace(tmp: Path, final: Path) -> None:
    """Move a finished ``tmp`` (file or directory) onto ``final``, replacing what was there."""
    if final.is_dir() and not final.is_symlink():
        trash = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(final, trash)
        os.replace(tmp, final)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(tmp, final)


STALE_AFTER_S = 3600  # a temporary whose writer cannot be told is stale after this long


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def clear_stale(final: Path) -> list[Path]:
    """Remove the temporaries an earlier writer of ``final`` left when it was killed (kill -9, a
    lost machine): ``.NAME.tmp-PID-*`` whose process is gone, and older ones that name no process
    once ``STALE_AFTER_S`` old. Returns what was removed."""
    removed = []
    for p in final.parent.glob(f".{final.name}.tmp-*"):
        pid = p.name[len(final.name) + 6:].split("-")[0]
        try:
            stale = not _alive(int(pid)) if "-" in p.name[len(final.name) + 6:] else \
                time.time() - p.lstat().st_mtime > STALE_AFTER_S
        except (ValueError, OSError):
            continue
        if stale:
            _remove(p)
            removed.append(p)
    return removed


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, overwrite: bool = False, directory: bool = False):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    Examples
    --------
    >>> with atomic_output("out.parquet", overwrite=True) as tmp:  # doctest: +SKIP
    ...     table.to_parquet(tmp)
    """
    final = check_output(path, overwrite)
    clear_stale(final)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    if directory:
        tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        _remove(tmp)
        raise
    replace(tmp, final)


ROW_GROUP_ROWS = 65536  # batches are gathered into row groups of about this many rows,
ROW_GROUP_BYTES = 32 << 20  # or this many bytes: a wide table of codes is written while the next batches are made


def column_matrix(columns: int, rows: int) -> np.ndarray:
    """A writable, C-ordered float32 (columns, rows) array for a batch of output columns (row k is
    column k), allocated from Arrow's memory pool: ``write_parquet_stream`` writes its rows without
    copying them (keyed by a tuple of their names), and while it holds them until their row group
    is written they stay out of the heap that the model's temporaries come and go in (held there,
    they would fragment it and raise peak memory by a few hundred MB on large inputs)."""
    import pyarrow as pa
    return np.frombuffer(pa.allocate_buffer(columns * rows * 4), np.float32).reshape(columns, rows)


def flat_columns(batch: dict) -> dict:
    """A batch dict with every matrix entry (a tuple of names keying a (names, rows) matrix) spread
    into 1-d columns, row k under name k, in order: the columns a DataFrame of the batch has."""
    flat = {}
    for name, v in batch.items():
        flat.update(zip(name, v) if isinstance(name, tuple) else ((name, v),))
    return flat


def batch_rows(batch) -> int:
    """The number of rows of a batch (DataFrame, or dict of columns and matrices)."""
    if not isinstance(batch, dict):
        return len(batch)
    name, v = next(iter(batch.items()), ((), np.empty((0, 0))))
    return v.shape[-1] if isinstance(name, tuple) else len(v)


def _arrow_copy(batch):
    """A batch (DataFrame, or dict of columns and matrices) as an Arrow table that holds no pandas object.

    A matrix entry (a tuple of K names keying a C-ordered float (K, B) array, made for this batch
    and not written to afterwards) becomes K slices of one Arrow view of it, which keeps it alive
    until written: a wide table of codes costs no copy and a few microseconds per column (with a
    NaN, which must become a null, each row is copied as a column). Other columns are copied into
    buffers Arrow owns: zero-copy views would keep each batch's pandas buffers alive while batches
    are gathered into a row group, and peak memory would grow with the number of batches.
    """
    import pandas as pd
    import pyarrow as pa
    if not isinstance(batch, dict):
        table = pa.Table.from_pandas(batch, preserve_index=False)
        return pa.table([pa.concat_arrays(col.chunks) for col in table.columns], schema=table.schema)
    names, arrays = [], []
    for name, v in batch.items():
        if isinstance(name, tuple) and v.flags.c_contiguous and v.dtype.kind == "f" and v.size \
                and not np.isnan(v.min()):
            flat = pa.array(v.reshape(-1))  # (K * B,): no copy
            names += name
            arrays += [flat.slice(k * v.shape[1], v.shape[1]) for k in range(len(name))]
            continue
        for n, col in (zip(name, v) if isinstance(name, tuple) else ((name, v),)):
            # object arrays (strings, tz-aware timestamps) take pandas' type inference, as a DataFrame would
            arr = pa.Array.from_pandas(pd.Series(col)) if col.dtype == object else pa.array(col, from_pandas=True)
            names.append(n)
            arrays.append(pa.concat_arrays([arr]))  # NaN and None are nulls, as in Table.from_pandas
    return pa.Table.from_arrays(arrays, names=names)


def write_parquet_stream(batches, out: str | os.PathLike, metadata: dict[str, str], overwrite: bool = False,
                         repeating: tuple[str, ...] = ()) -> int:
    """Write an iterable of batches (DataFrames, or dicts of 1-d arrays, all with the same columns;
    a tuple of names may key a (names, rows) matrix whose rows are those columns) to one Parquet
    file under a temporary name renamed when complete; ``metadata`` goes into the file's schema.
    Returns the number of rows.

    Small batches are gathered into row groups of ``ROW_GROUP_ROWS`` rows or ``ROW_GROUP_BYTES``: thousands of tiny row
    groups would make the file slow to read and its footer (kept in memory until closed) large.
    Floating-point columns (codes, scores) are written without dictionary encoding or min/max
    statistics: their values hardly ever repeat and no reader filters on them, so both cost time
    (a sixth of the writing of a wide table of codes) and save nothing. The float columns named in
    ``repeating`` take only a few values each (the random-kernel features: a count of steps over a
    length) and are dictionary-encoded: their file is half the size and reads faster. Batches are
    converted and written on a second thread while the caller makes the next ones (Arrow's writer
    releases the GIL): a wide table of codes costs about as much to write as to compute.
    """
    import queue
    import threading
    rows = 0
    with atomic_output(out, overwrite) as tmp:
        todo: queue.Queue = queue.Queue(maxsize=2)  # batches made, not yet written: bounded memory
        failed: list[BaseException] = []
        thread = threading.Thread(target=_write_tables, args=(todo, tmp, metadata, failed, set(repeating)),
                                  daemon=True)
        thread.start()
        try:
            for batch in batches:
                todo.put(batch)  # never blocks for good: a failed writer drains the queue until None
                if failed:
                    break
                rows += batch_rows(batch)
        finally:
            todo.put(None)  # the writer always takes one more item, or has stopped taking any
            thread.join()
        if failed:
            raise failed[0]
    return rows


def _write_tables(todo, tmp: Path, metadata: dict[str, str], failed: list, repeating: set[str]) -> None:
    """The writer thread of ``write_parquet_stream``: batches from ``todo`` until None."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    writer, pending, pending_rows, pending_bytes = None, [], 0, 0
    try:
        while (batch := todo.get()) is not None:
            table = _arrow_copy(batch)
            if writer is None:
                meta = dict(table.schema.metadata or {}) | {k.encode(): v.encode() for k, v in metadata.items()}
                keyed = [f.name for f in table.schema if not pa.types.is_floating(f.type)]  # ids, times, labels
                repeats = [f.name for f in table.schema if f.name in repeating]
                writer = pq.ParquetWriter(tmp, table.schema.with_metadata(meta), use_dictionary=keyed + repeats,
                                          write_statistics=keyed)
            same = table.schema.equals(writer.schema, check_metadata=False)
            pending.append(table if same else table.cast(writer.schema))
            pending_rows += table.num_rows
            pending_bytes += table.nbytes
            if pending_rows >= ROW_GROUP_ROWS or pending_bytes >= ROW_GROUP_BYTES:
                writer.write_table(pa.concat_tables(pending), row_group_size=pending_rows)
                pending, pending_rows, pending_bytes = [], 0, 0
        if pending:
            writer.write_table(pa.concat_tables(pending), row_group_size=pending_rows)
    except BaseException as e:  # noqa: BLE001 - handed to the caller's thread, raised there
        failed.append(e)
        while todo.get() is not None:  # let the caller finish putting
            pass
    finally:
        if writer is not None:
            writer.close()
