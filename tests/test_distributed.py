"""``encoder train --distributed`` under torchrun: 2 gloo processes reach the 1-process validation loss."""
import json
import os
import subprocess
import sys

from click.testing import CliRunner

from pipelines.cli import main

OPTIONS = "[encoder]\nhidden_size = 16\nlatent_dim = 8\nbatch_size = 8\nepochs = 6\npatience = 50\n"


def test_two_processes_match_one(events, tmp_path):
    events.to_parquet(tmp_path / "ev.parquet")
    (tmp_path / "c.toml").write_text(OPTIONS)
    args = [str(tmp_path / "ev.parquet"), "--id", "account", "--time", "ts", "--label", "label",
            "--config", str(tmp_path / "c.toml")]
    r = CliRunner().invoke(main, ["encoder", "train", *args, "--out", str(tmp_path / "one")])
    assert r.exit_code == 0, r.output
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "pipelines", "encoder", "train", *args, "--out", str(tmp_path / "two"),
                           "--distributed"], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("written to") == 1  # process 0 alone writes and reports
    one, two = (json.loads((tmp_path / d / "manifest.json").read_text())["training"] for d in ("one", "two"))
    assert two["epochs_run"] == one["epochs_run"]
    assert abs(two["best_val_loss"] - one["best_val_loss"]) <= 0.05 * one["best_val_loss"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml", "ev.parquet", "one", "two"]  # no .partial left


def test_distributed_outside_torchrun_is_one_line(events, tmp_path, monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    events.to_parquet(tmp_path / "ev.parquet")
    r = CliRunner().invoke(main, ["encoder", "train", str(tmp_path / "ev.parquet"), "--id", "account", "--time", "ts",
                                  "--out", str(tmp_path / "enc"), "--distributed"])
    assert r.exit_code == 1 and r.output.startswith("error: --distributed runs under torchrun")
    assert not (tmp_path / "enc").exists()
