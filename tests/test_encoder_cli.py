"""``seqae encoder`` commands through click's CliRunner: outputs, exit codes, one-line errors."""
import json

import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from pipelines.cli import main

FAST = ["--epochs", "2", "--latent-dim", "4"]


@pytest.fixture
def table(events, tmp_path):
    path = tmp_path / "events.parquet"
    events.to_parquet(path)
    return path


@pytest.fixture
def trained(table, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[encoder]\nhidden_size = 8\nbatch_size = 4\n")
    r = CliRunner().invoke(main, ["encoder", "train", str(table), "--id", "account", "--time", "ts",
                                  "--label", "label", "--config", str(cfg), "--out", str(tmp_path / "enc"), *FAST])
    assert r.exit_code == 0, r.output
    rule = json.loads((tmp_path / "enc" / "manifest.json").read_text())["training"]["segments"]
    assert f"note: segment maxima {'kept' if rule['kept'] else 'dropped'}: the part of a sequence explains " \
           f"{rule['share']:.2f} of their variance" in r.output
    return tmp_path / "enc"


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_help_lists_groups():
    r = run("--help")
    assert r.exit_code == 0 and all(g in r.output for g in ("encoder", "classifier", "pipeline"))


def test_train_writes_directory_with_resolved_config(trained):
    m = json.loads((trained / "manifest.json").read_text())
    assert m["config"]["network"]["hidden_size"] == 8 and m["config"]["training"]["epochs"] == 2 and m["config"]["data"]["max_len"] >= 1
    n_stats = 10 * len(m["numeric_channels"])  # the entity code ends with summary statistics per numeric channel
    segments = m["config"]["blocks"]["segments"]  # the provisional 4, kept or dropped by the measured share
    assert segments == (4 if m["training"]["segments"]["kept"] else 0) == m["model_config"]["segments"]
    n_kernels = m["config"]["blocks"]["kernel_features"]  # then the random-kernel features, 2520 by default
    assert n_kernels == 2520 == len(m["code_layout"]["kernels"])
    assert m["unit"] == "entity" and m["code_width"] == 4 * (1 + segments) + n_stats + n_kernels and m["config"]["blocks"]["summary_stats"] is True
    assert len(m["code_layout"]["segments"]) == 4 * segments
    assert m["config"]["network"]["conv_dim"] == 0 and m["code_layout"]["conv"] == []  # no convolution branch by default
    assert len(m["code_layout"]["summary"]) == n_stats and f"mean:{m['numeric_channels'][0]}" in m["code_layout"]["summary"].values()
    assert m["config"]["network"]["pooling"] == ["max"] and m["config"]["training"]["contrastive_weight"] == 1.0  # the entity defaults
    assert m["model_config"]["pooling"] == ["max"]
    assert not trained.with_name("enc.partial").exists()


def test_encode_writes_parquet_with_encoder_id(trained, table, tmp_path):
    out = tmp_path / "z.parquet"
    r = run("encoder", "encode", trained, table, "--out", out, "--unit", "event", "--batch-size", "7")
    assert r.exit_code == 0, r.output
    meta = pq.read_schema(out).metadata
    assert meta[b"encoder_id"].decode() == json.loads((trained / "manifest.json").read_text())["encoder_id"]
    z = pd.read_parquet(out)
    assert list(z.columns[:3]) == ["account", "ts", "label"] and len(z) == len(pd.read_parquet(table))
    assert "warning: this encoder codes entities" not in r.output  # a few events: no word about speed
    r = run("encoder", "encode", trained, table, "--out", out)
    assert r.exit_code == 1 and r.output.strip() == f"error: output '{out}' exists already; pass --overwrite to replace it"


def test_event_codes_from_an_entity_encoder_say_why_they_are_slow(trained, table, tmp_path, monkeypatch):
    from encoder import estimator
    monkeypatch.setattr(estimator, "SLOW_PATH_EVENTS", 10)
    r = run("encoder", "encode", trained, table, "--out", tmp_path / "z.parquet", "--unit", "event")
    assert r.exit_code == 0, r.output
    line = next(x for x in r.output.splitlines() if x.startswith("warning: this encoder codes entities"))
    assert "re-reads its window" in line and "2520 random-kernel features" in line and "--unit event" in line
    r = run("encoder", "encode", trained, table, "--out", tmp_path / "e.parquet")  # entity codes: one pass
    assert r.exit_code == 0 and "warning" not in r.output


def test_inspect_prints_manifest(trained):
    r = run("encoder", "inspect", trained)
    assert r.exit_code == 0 and "encoder_id" in r.output and "numeric      signal, amount" in r.output
    assert "segments     " in r.output and "position share" in r.output
    assert json.loads(run("encoder", "inspect", trained, "--json").output)["format"] == "seqae-encoder"


@pytest.mark.parametrize("args, message", [
    (["--id", "acct", "--time", "ts"], "--id column 'acct' is not in"),
    (["--id", "account", "--time", "when"], "--time column 'when' is not in"),
    (["--id", "account", "--time", "ts", "--label", "y"], "--label column 'y' is not in"),
])
def test_train_bad_columns_exit_1_one_line(table, tmp_path, args, message):
    r = run("encoder", "train", table, *args, "--out", tmp_path / "e", *FAST)
    assert r.exit_code == 1
    assert r.output.startswith(f"error: {message}") and r.output.count("\n") == 1
    assert not (tmp_path / "e").exists() and not (tmp_path / "e.partial").exists()


@pytest.mark.parametrize("flag, value", [("--max-len", "0"), ("--latent-dim", "0"), ("--epochs", "-1")])
def test_non_positive_sizes_are_usage_errors(table, tmp_path, flag, value):
    r = run("encoder", "train", table, "--id", "account", "--time", "ts", flag, value, "--out", tmp_path / "e")
    assert r.exit_code == 2 and "Invalid value for" in r.output  # --epochs 0 is the untrained control


def test_missing_file_and_not_parquet(tmp_path):
    r = run("encoder", "train", tmp_path / "none.parquet", "--id", "a", "--time", "t", "--out", tmp_path / "e")
    assert r.exit_code == 1 and r.output == f"error: file '{tmp_path / 'none.parquet'}' does not exist\n"
    (tmp_path / "x.parquet").write_bytes(b"PAR1garbage")
    r = run("encoder", "train", tmp_path / "x.parquet", "--id", "a", "--time", "t", "--out", tmp_path / "e")
    assert r.exit_code == 1 and r.output.startswith(f"error: '{tmp_path / 'x.parquet'}' is not a readable Parquet file")


def test_encode_refuses_changed_schema(trained, events, tmp_path):
    bad = tmp_path / "bad.csv"
    events.drop(columns="channel").to_csv(bad, index=False)
    r = run("encoder", "encode", trained, bad, "--out", tmp_path / "z.parquet")
    assert r.exit_code == 1
    assert r.output == f"error: feature column 'channel' seen in training is missing from '{bad}'\n"
    assert not (tmp_path / "z.parquet").exists()


def test_resume_without_checkpoint_is_an_error(table, tmp_path):
    r = run("encoder", "train", table, "--id", "account", "--time", "ts", "--out", tmp_path / "e", "--resume", *FAST)
    assert r.exit_code == 1 and "no checkpoint to resume from" in r.output
