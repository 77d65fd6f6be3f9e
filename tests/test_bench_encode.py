"""scripts/bench_encode.py times what it says: the encoder's whole output file, and raw LSTM
forwards over the same padded shapes, whole and in the encoder's length groups (on torch's threads
and on one-core threads), and the CPU seconds of the encoder's pass."""
import platform
import subprocess
import sys
from pathlib import Path

import pandas as pd

from encoder import EncoderConfig, SequenceEncoder

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import bench_encode  # noqa: E402


def test_the_encode_benchmark_times_the_whole_output_and_every_raw_baseline(tmp_path):
    table = bench_encode.make_table(300, 8)
    assert table.groupby("entity").size().between(4, 12).all()  # about 8 events each
    path = tmp_path / "events.parquet"
    table.to_parquet(path)
    cfg = EncoderConfig.of(epochs=1, max_sequences_per_epoch=100, hidden_size=8, latent_dim=4, seed=0)
    enc = SequenceEncoder("entity", "t", config=cfg).fit(table)
    got = bench_encode.bench_encode(enc, path, "entity", 64, tmp_path / "z.parquet", repeats=1)
    assert got.rows == 300 and min(got.ours, got.raw, got.grouped, got.threads, got.ours_cpu) > 0
    assert min(got.faults) >= 0
    written = pd.read_parquet(tmp_path / "z.parquet")
    assert len(written) == 300 and written.shape[1] == 1 + enc.model_config_.code_dim  # the id, then every z_*


def test_the_benchmark_keeps_freed_memory_on_glibc():
    """The timed sections run with malloc keeping what it frees (no side pays page faults for the
    other's released temporaries); in a process of its own, as it changes that process's malloc."""
    code = ("import sys; sys.path.insert(0, 'scripts'); import bench_encode; "
            "print(bench_encode.keep_freed_memory())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.stdout.strip() == ("True" if platform.libc_ver()[0] == "glibc" else "False")
