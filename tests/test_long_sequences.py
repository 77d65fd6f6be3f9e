"""Long sequences are coded whole (strided reading); any truncation left is warned and recorded."""
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from encoder import EncoderConfig, SequenceEncoder
from encoder.config import PATCH_STEPS
from encoder.io.errors import InputError, TruncationWarning
from encoder.nn.lstm import fold_patches, unfold_patches
from encoder.training.loop import crop_contrastive_loss
from pipelines.cli import main

OLD_CAP = 256  # max_len_cap before issue 11: longer sequences silently lost their oldest events


def long_events(lengths=(300, 40, 60, 35), seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = [{"series": e, "t": i, "x": float(v), "label": e % 2}
            for e, n in enumerate(lengths) for i, v in enumerate(rng.normal(size=n))]
    return pd.DataFrame(rows)


# mean pooling: every step provably reaches the code (a max may ignore a changed step)
TINY = EncoderConfig.of(hidden_size=8, latent_dim=4, epochs=2, batch_size=2, min_batches_per_epoch=1, seed=0,
                        pooling=("mean",))


def test_a_sequence_longer_than_the_old_cap_is_coded_from_all_its_steps():
    df = long_events()
    enc = SequenceEncoder("series", "t", "label", TINY).fit(df)
    assert enc.max_len_ == 300 > OLD_CAP
    assert enc.training_["truncation"]["n_truncated"] == 0
    before = enc.transform(df)
    first = df.index[(df.series == 0) & (df.t == 0)]
    changed = df.copy()
    changed.loc[first, "x"] += 25.0  # the oldest of 300 events
    after = enc.transform(changed)
    z = [c for c in before.columns if c.startswith("z_")]
    assert not np.allclose(before.loc[0, z].to_numpy(float), after.loc[0, z].to_numpy(float))
    assert np.allclose(before.loc[1:, z].to_numpy(float), after.loc[1:, z].to_numpy(float))


def test_very_long_sequences_are_read_in_patches_of_events_and_still_whole():
    n = 3 * PATCH_STEPS + 5
    df = long_events((n, n - 7, n - 20))
    enc = SequenceEncoder("series", "t", "label", TINY).fit(df)
    assert enc.max_len_ == n and enc.config_.data.patch == 4  # ceil(n / PATCH_STEPS) events per LSTM step
    before = enc.transform(df)
    changed = df.copy()
    changed.loc[(df.series == 1) & (df.t == 0), "x"] -= 25.0
    after = enc.transform(changed)
    z = [c for c in before.columns if c.startswith("z_")]
    assert not np.allclose(before.loc[1, z].to_numpy(float), after.loc[1, z].to_numpy(float))


def test_truncation_is_warned_and_recorded_in_the_manifest(tmp_path):
    df = long_events()
    with pytest.warns(TruncationWarning, match=r"1 of 4 sequences in '<DataFrame>' are longer than max_len 100 "
                                              r"\(longest 300\): their oldest 200 events"):
        enc = SequenceEncoder("series", "t", "label", TINY.replace(max_len=100)).fit(df)
    enc.save(tmp_path / "enc")
    record = json.loads((tmp_path / "enc" / "manifest.json").read_text())["training"]["truncation"]
    assert record == {"unit": "entity", "max_len": 100, "n_sequences": 4, "longest": 300,
                      "n_truncated": 1, "events_dropped": 200}
    with pytest.warns(TruncationWarning, match="1 of 4 sequences"):
        enc.transform(df)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncationWarning)
        enc.transform(df[df.series != 0])  # nothing longer than max_len: no warning


def test_cli_prints_truncation_as_one_warning_line(tmp_path):
    path = tmp_path / "long.csv"
    long_events().to_csv(path, index=False)
    r = CliRunner().invoke(main, ["encoder", "train", str(path), "--id", "series", "--time", "t", "--label", "label",
                                  "--max-len", "100", "--epochs", "1", "--latent-dim", "4", "--out", str(tmp_path / "enc")])
    assert r.exit_code == 0, r.output
    lines = [line for line in r.output.splitlines() if line.startswith("warning:")]
    assert len(lines) == 1 and "1 of 4 sequences" in lines[0] and "raise --max-len" in lines[0]


def test_fold_and_unfold_patches_are_inverse_and_zero_past_each_length():
    x = torch.arange(2 * 7 * 3, dtype=torch.float32).view(2, 7, 3)  # (B, T, C)
    lengths = torch.tensor([7, 5])
    folded = fold_patches(x, lengths, 3)
    assert folded.shape == (2, 3, 9)
    assert torch.equal(folded[1, 1], torch.cat([x[1, 3], x[1, 4], torch.zeros(3)]))  # events 3, 4, then padding
    assert torch.equal(unfold_patches(folded, 3, 7)[0], x[0])


def test_contrastive_crops_with_patches_are_finite_and_learnable():
    enc = SequenceEncoder("series", "t", "label", TINY.replace(patch=3)).fit(long_events((30, 25, 17, 9)))
    num, cat = torch.randn(4, 30, enc.model_config_.n_numeric), torch.zeros(4, 30, 0, dtype=torch.long)
    lengths = torch.tensor([30, 25, 17, 1])
    loss = crop_contrastive_loss(enc.model_.encoder, num, cat, lengths, torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss) and enc.model_.encoder.project.weight.grad.abs().sum() > 0


def test_surprise_needs_one_event_per_step():
    with pytest.raises(InputError, match="config 'surprise' .* needs one event per step, but 'patch' is 2"):
        EncoderConfig.of(surprise=True, patch=2).resolved([10])


def test_ucr_benchmark_measures_every_block_and_the_untrained_twin():
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    import benchmark_ucr
    overrides = {"epochs": 3, "kernel_features": 84, "segments": 2}  # --set epochs=3 --set kernel_features=84 ...
    results = benchmark_ucr.benchmark(["UnitTest"], [0, 1], overrides=overrides)
    run = results["UnitTest"][0]
    assert run["widths"] == {"pooled": 32, "segments": 64, "summary": 20, "kernels": 84}  # 2 numeric channels: x0, time gap
    blocks = list(run["widths"])
    assert set(run["accuracy"]) == {"full", "learned", "twin:full", "twin:learned", *(f"only:{b}" for b in blocks),
                                    *(f"without:{b}" for b in blocks)}
    assert all(0 <= a <= 1 for a in run["accuracy"].values()) and run["epochs"] <= 3  # the override reached it
    summary = benchmark_ucr.summary_table(results, 2).splitlines()
    row = [c.strip() for c in summary[2].strip("|").split("|")]
    assert row[0] == "UnitTest" and row[3].endswith("/2 > 0)")  # the lift, paired by seed
    lift = np.mean([r["accuracy"]["full"] - r["accuracy"]["twin:full"] for r in results["UnitTest"]])
    assert row[3].startswith(f"{lift:+.3f}")
    rows = benchmark_ucr.block_table(results).splitlines()[2:]
    assert len(rows) == len(run["accuracy"]) and "| UnitTest | only:kernels | 84 columns |" in "\n".join(rows)


def test_an_epoch_reads_at_most_max_steps_per_epoch(monkeypatch):
    """12 series of 100 events, 250 steps an epoch: 2 windows an epoch, and 2 validation windows."""
    from encoder.training.loop import Trainer
    read = []
    step = Trainer.train_step
    monkeypatch.setattr(Trainer, "train_step", lambda self, ends: (read.append(len(ends)), step(self, ends))[1])
    cfg = TINY.replace(max_steps_per_epoch=250, val_fraction=0.5)
    enc = SequenceEncoder("series", "t", "label", cfg).fit(long_events((100,) * 12))
    assert enc.config_.training.max_sequences_per_epoch == 2  # resolved, so the manifest records it
    assert sum(read) == 2 * enc.training_["epochs_run"] and enc.training_["n_val_sequences"] == 2
    assert enc.training_["n_train_sequences"] == 6  # every series still trains, 2 at random per epoch


def test_the_entity_default_bounds_long_epochs_and_leaves_small_sets_whole():
    gunpoint = EncoderConfig().resolved(np.full(50, 150))
    assert gunpoint.training.max_steps_per_epoch == 24000 and gunpoint.training.max_sequences_per_epoch == 160
    osuleaf = EncoderConfig().resolved(np.full(200, 427))  # 160 training series of 214 steps (patch 2)
    assert osuleaf.data.patch == 2 and osuleaf.training.max_sequences_per_epoch == 24000 // 214
    branch = EncoderConfig.of(conv_dim=64).resolved(np.full(200, 427))  # a branch step counts twice
    assert branch.training.max_sequences_per_epoch == 24000 // (214 * 2)
    big = EncoderConfig().resolved(np.full(3600, 500))
    assert big.data.patch == 2 and big.training.max_sequences_per_epoch == 24000 // 250
    event = EncoderConfig.of(unit="event").resolved(np.full(50, 500))
    assert event.training.max_steps_per_epoch == 0 and event.training.max_sequences_per_epoch == 20000
    with pytest.raises(InputError, match="max_steps_per_epoch"):
        EncoderConfig.of(max_steps_per_epoch=-1)


def test_the_entity_default_bounds_the_whole_training_and_leaves_short_sets_their_epochs():
    """Long sets get fewer epochs (``max_train_steps``, resolved so the manifest records it)."""
    gunpoint = EncoderConfig().resolved(np.full(50, 150))  # 40 training series x 150 steps x 200 epochs
    assert gunpoint.training.max_train_steps == 1_200_000 and gunpoint.training.epochs == 200
    acsf1 = EncoderConfig().resolved(np.full(100, 1460))  # 80 training series of 244 steps (patch 6)
    assert acsf1.data.patch == 6 and acsf1.training.epochs == 1_200_000 // (80 * 244)
    osuleaf = EncoderConfig().resolved(np.full(200, 427))  # 112 series an epoch of 214 steps
    assert osuleaf.training.epochs == 1_200_000 // (112 * 214)
    assert EncoderConfig.of(epochs=5).resolved(np.full(100, 1460)).training.epochs == 5  # a bound, never a floor
    assert EncoderConfig.of(max_train_steps=0).resolved(np.full(100, 1460)).training.epochs == 200  # 0: no bound
    assert EncoderConfig.of(unit="event").resolved(np.full(50, 500)).training.epochs == 200  # the event unit: no bound
    with pytest.raises(InputError, match="max_train_steps"):
        EncoderConfig.of(max_train_steps=-1)


def test_training_stops_at_the_step_budget():
    """12 series of 100 events, 6 training series an epoch: 1300 steps is 2 epochs."""
    cfg = TINY.replace(epochs=50, patience=50, max_train_steps=1300, val_fraction=0.5)
    enc = SequenceEncoder("series", "t", "label", cfg).fit(long_events((100,) * 12))
    assert enc.config_.training.epochs == 2 and enc.training_["epochs_run"] == 2


def test_an_attempt_is_compared_with_the_defaults_seed_by_seed():
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    import benchmark_ucr
    run = lambda full, twin: {"accuracy": {"full": full, "twin:full": twin, "learned": 0.5, "twin:learned": 0.4},  # noqa: E731
                              "train_s": 10.0}
    base = {"GunPoint": [run(0.90, 0.90), run(0.80, 0.85), run(0.70, 0.70)]}
    attempt = {"GunPoint": [run(0.95, 0.90), run(0.80, 0.80)]}  # two seeds: only those are paired
    rows = benchmark_ucr.attempt_table(base, attempt, "wide").splitlines()
    cells = [c.strip() for c in rows[2].strip("|").split("|")]
    assert rows[0].count("wide") == 6 and cells[:3] == ["GunPoint", "2", "0.850 / 0.875"]
    assert cells[3] == "+0.025 [+0.000, +0.050] (1/2 > 0, 0 < 0)"  # attempt - default, by seed
    assert cells[4] == cells[3] and cells[5] == "-0.025 [-0.050, +0.000] (0/2 > 0, 1 < 0)"  # each one's twin
    assert cells[-1] == "0.980" and rows[-1].startswith("| mean | | 0.850 / 0.875 | +0.025 |")
