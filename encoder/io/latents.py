"""Latent parquet files as ``encoder encode`` writes them: read back, with the metadata it recorded."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from encoder.io.errors import InputError

LATENT_PREFIX = "z_"  # code columns: z_0 .. z_{K-1}


def read_parquet(path: str | Path) -> tuple[pd.DataFrame, dict]:
    """A Parquet file as a DataFrame and its key-value metadata (text; pandas' own left out)."""
    import pyarrow.parquet as pq
    path = Path(path)
    if not path.exists():
        raise InputError(f"file '{path}' does not exist")
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a non-parquet file
        raise InputError(f"'{path}' is not a readable Parquet file: {str(exc).splitlines()[0]}") from None
    meta = {k.decode(): v.decode() for k, v in (table.schema.metadata or {}).items() if k != b"pandas"}
    return table.to_pandas(), meta


def latent_columns(frame: pd.DataFrame, path) -> list[str]:
    """The ``z_*`` columns of a latent file, refused by name when there are none."""
    zcols = [c for c in frame.columns if str(c).startswith(LATENT_PREFIX)]
    if not zcols:
        raise InputError(f"'{path}' has no {LATENT_PREFIX}* columns: is it a latent file written by 'seqae encoder encode'?")
    return zcols
