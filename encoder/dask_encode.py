"""The Dask engine's common part: read an event table as partitions of whole entities, run a task on
each partition, write one Parquet file per partition; and ``encoder encode`` on it.

The table is read as a Dask DataFrame, every row tagged with its position in the file, and
shuffled on the entity key so that each partition holds whole entities (point-in-time codes and
baseline features need an entity's whole history). Each partition is put back in file order and
run through exactly the single-process code path (``SequenceEncoder.encode_to_parquet``), then
written as one Parquet file. The output is a directory of ``part-NNNNN.parquet`` files (a
partitioned dataset any Parquet reader takes whole), written under a temporary name and renamed
when every partition is done.

Row order: within a file, rows keep the single-process order (input order for the event unit,
id order for the entity unit); the files hold disjoint sets of entities.
"""
from __future__ import annotations

import contextlib
import functools
from pathlib import Path

from encoder.io.atomic import atomic_output, check_output
from encoder.io.errors import InputError

ROW = "__seqae_row"  # file position of each event, carried through the shuffle


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None):
    """A ``distributed.Client`` on the scheduler at ``scheduler`` (``tcp://host:8786``), or on a
    local cluster of ``workers`` processes (one thread each) that is closed afterwards."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise InputError("--engine dask needs dask and distributed: pip install 'seqae[dask]'") from None
    if scheduler:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise InputError(f"cannot reach the Dask scheduler at '{scheduler}': {exc}") from None
        with client:
            yield client
        return
    with LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


def read_events(events, id_col: str, partitions: int | None = None, workers: int = 1):
    """``events`` (Parquet file or directory, or CSV) as a Dask DataFrame shuffled on ``id_col``
    into ``partitions`` partitions [as many as the input's, at least 2 per worker], each row
    carrying its file position in ``ROW``."""
    import dask
    import dask.dataframe as dd
    dask.config.set({"dataframe.convert-string": False})  # keep pandas' own types, as one process reads them
    path = Path(events)
    if not path.exists():
        raise InputError(f"events '{path}' do not exist")
    ddf = dd.read_csv(str(path)) if path.suffix.lower() == ".csv" else dd.read_parquet(str(path))
    if id_col not in ddf.columns:
        raise InputError(f"--id column '{id_col}' is not in '{path}' (columns: {', '.join(map(str, ddf.columns))})")
    ddf = ddf.assign(**{ROW: 1})
    ddf[ROW] = ddf[ROW].cumsum() - 1  # position in the file, across partitions
    return ddf.shuffle(on=id_col, npartitions=partitions or max(ddf.npartitions, 2 * workers))


def in_file_order(part):
    """A shuffled partition back in file order, without the position column."""
    return part.sort_values(ROW, kind="stable").drop(columns=ROW).reset_index(drop=True)


@functools.lru_cache(maxsize=4)
def load_encoder(encoder_dir: str):
    """Each worker process loads an encoder once."""
    from encoder.estimator import SequenceEncoder
    return SequenceEncoder.load(encoder_dir)


def _encode_part(part, encoder_dir: str, unit: str | None, batch_size: int, path: str) -> int:
    """Encode one partition with the single-process code path and write it to ``path``."""
    if len(part) == 0:
        return 0
    enc = load_encoder(encoder_dir)
    return enc.encode_to_parquet(in_file_order(part), path, unit=unit, batch_size=batch_size)


def run_partitions(client, ddf, task, out, overwrite: bool) -> tuple[int, int]:
    """Run ``task(partition, path=...)`` on every partition, writing ``out/part-NNNNN.parquet``
    atomically as a directory; returns (rows, files)."""
    import dask
    with atomic_output(out, overwrite, directory=True) as tmp:
        parts = ddf.to_delayed()
        writes = [dask.delayed(task)(p, path=str(tmp / f"part-{i:05d}.parquet")) for i, p in enumerate(parts)]
        rows = client.compute(writes, sync=True)
        files = sum(1 for r in rows if r)
    return int(sum(rows)), files


def encode_dask(encoder_dir, events, out, unit: str | None = None, batch_size: int = 1024,
                overwrite: bool = False, scheduler: str | None = None, workers: int | None = None,
                partitions: int | None = None) -> tuple[int, int]:
    """``encoder encode`` on Dask: latent codes of ``events`` as a partitioned Parquet dataset at ``out``.
    Returns (rows, files)."""
    check_output(out, overwrite)
    enc = load_encoder(str(Path(encoder_dir).resolve()))  # fails here, once, on a bad encoder directory
    with dask_client(scheduler, workers) as client:
        ddf = read_events(events, enc.schema_.id_col, partitions, len(client.scheduler_info()["workers"]))
        task = functools.partial(_encode_part, encoder_dir=str(Path(encoder_dir).resolve()), unit=unit,
                                 batch_size=batch_size)
        return run_partitions(client, ddf, task, out, overwrite)
