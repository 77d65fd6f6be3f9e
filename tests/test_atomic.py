"""Atomic Parquet streaming: row groups gathered from batches, floats written plain, nothing half-written."""
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from encoder.io import atomic
from encoder.io.errors import InputError


def _batches(n_batches=7, rows=3):
    for b in range(n_batches):
        ids = np.arange(b * rows, (b + 1) * rows)
        yield {"id": ids, "label": np.where(ids % 4 == 0, np.nan, ids % 2), "z_0": (ids / 10).astype(np.float32)}


def test_batches_are_gathered_into_row_groups(tmp_path, monkeypatch):
    monkeypatch.setattr(atomic, "ROW_GROUP_ROWS", 5)
    rows = atomic.write_parquet_stream(_batches(), tmp_path / "z.parquet", {"encoder_id": "abc"})
    meta = pq.ParquetFile(tmp_path / "z.parquet").metadata
    assert rows == 21 and meta.num_rows == 21
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [6, 6, 6, 3]
    table = pq.read_table(tmp_path / "z.parquet")
    assert table.schema.metadata[b"encoder_id"] == b"abc"
    df = table.to_pandas()
    assert df["id"].tolist() == list(range(21))
    assert df["label"].isna().tolist() == [i % 4 == 0 for i in range(21)]  # NaN is written as null
    z = meta.row_group(0).column(2)
    assert z.path_in_schema == "z_0" and not any("DICT" in e for e in z.encodings)  # floats plain
    assert any("DICT" in e for e in meta.row_group(0).column(0).encodings)  # keys may repeat
    assert not z.is_stats_set and meta.row_group(0).column(0).is_stats_set  # readers filter on keys, not codes


def test_float_columns_named_repeating_are_dictionary_encoded(tmp_path):
    batches = ({**b, "z_1": np.round(b["z_0"], 1)} for b in _batches())
    atomic.write_parquet_stream(batches, tmp_path / "z.parquet", {}, repeating=("z_1",))
    meta = pq.ParquetFile(tmp_path / "z.parquet").metadata
    encodings = {meta.row_group(0).column(i).path_in_schema: meta.row_group(0).column(i).encodings
                 for i in range(meta.num_columns)}
    assert any("DICT" in e for e in encodings["z_1"]) and not any("DICT" in e for e in encodings["z_0"])
    df = pq.read_table(tmp_path / "z.parquet").to_pandas()
    assert df["z_1"].tolist() == np.round(np.arange(21, dtype=np.float32) / 10, 1).tolist()  # values unchanged


def test_dataframe_and_array_batches_write_the_same_values(tmp_path):
    atomic.write_parquet_stream(_batches(), tmp_path / "a.parquet", {})
    atomic.write_parquet_stream((pd.DataFrame(b) for b in _batches()), tmp_path / "b.parquet", {})
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "a.parquet"), pd.read_parquet(tmp_path / "b.parquet"))


def test_a_failure_midway_leaves_nothing_and_existing_output_is_refused(tmp_path):
    def failing():
        yield from _batches(2)
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        atomic.write_parquet_stream(failing(), tmp_path / "z.parquet", {})
    assert list(tmp_path.iterdir()) == []
    atomic.write_parquet_stream(_batches(1), tmp_path / "z.parquet", {})
    with pytest.raises(InputError, match="exists already; pass --overwrite"):
        atomic.write_parquet_stream(_batches(1), tmp_path / "z.parquet", {})


def test_a_writer_killed_mid_write_leaves_a_temporary_the_next_run_clears(tmp_path):
    import subprocess
    import sys
    out = tmp_path / "z.parquet"
    out.write_bytes(b"previous output")
    code = ("import os, signal, sys; from encoder.io import atomic\n"
            f"with atomic.atomic_output({str(out)!r}, overwrite=True) as tmp:\n"
            "    tmp.write_bytes(b'half')\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n")
    assert subprocess.run([sys.executable, "-c", code]).returncode == -9
    left = list(tmp_path.glob(".z.parquet.tmp-*"))
    assert len(left) == 1 and out.read_bytes() == b"previous output"  # litter, and the old output intact
    mine = tmp_path / f".z.parquet.tmp-{__import__('os').getpid()}-live"  # a writer still running
    mine.write_bytes(b"in progress")
    atomic.write_parquet_stream(_batches(), out, {}, overwrite=True)
    assert not left[0].exists() and mine.exists()
    assert pq.read_table(out).num_rows == 21


def test_a_matrix_of_codes_is_written_as_the_columns_its_rows_are(tmp_path):
    codes = np.ascontiguousarray(np.arange(24, dtype=np.float32).reshape(6, 4).T)  # (K=4, B=6): column k is row k
    with_nan = np.ones((2, 6), np.float32)
    with_nan[1, 2] = np.nan
    batch = {"id": np.arange(6), tuple(f"z_{k}" for k in range(4)): codes, ("a", "b"): with_nan,
             "tail": np.arange(6) * 0.5}
    assert atomic.batch_rows(batch) == 6 and list(atomic.flat_columns(batch)) == \
        ["id", "z_0", "z_1", "z_2", "z_3", "a", "b", "tail"]
    atomic.write_parquet_stream([batch, batch], tmp_path / "z.parquet", {})
    got = pd.read_parquet(tmp_path / "z.parquet")
    assert list(got.columns) == ["id", "z_0", "z_1", "z_2", "z_3", "a", "b", "tail"] and len(got) == 12
    for k in range(4):
        np.testing.assert_array_equal(got[f"z_{k}"].to_numpy(), np.tile(codes[k], 2))
    assert got["b"].isna().tolist() == [False, False, True, False, False, False] * 2  # NaN: a null
    assert not got["a"].isna().any()
