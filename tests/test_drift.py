"""Latent and input drift: PSI on its own, then ``seqae encoder drift`` on a time split of simulated
card events and on a deliberately shifted copy (amounts x 3, a new merchant mix)."""
import json

import numpy as np
import pytest
from cli_helpers import run

from encoder.drift import categorical_psi, noise_level, numeric_psi, psi, usable_bins
from pipelines.simulate.demo import simulate_events

pytestmark = pytest.mark.filterwarnings("ignore::encoder.io.errors.TruncationWarning")


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift():
    rng = np.random.default_rng(0)
    ref = rng.normal(0, 1, 20000)
    assert psi(np.array([10, 20, 30]), np.array([20, 40, 60])) == pytest.approx(0.0)
    assert numeric_psi(ref, rng.normal(0, 1, 5000)) < 0.02
    small, large = numeric_psi(ref, rng.normal(0.3, 1, 5000)), numeric_psi(ref, rng.normal(1.0, 1, 5000))
    assert 0.05 < small < large and large > 0.25
    missing = rng.normal(0, 1, 5000)
    missing[:1000] = np.nan  # 20% missing where the reference had none: a bin of its own
    assert numeric_psi(ref, missing) > 0.25


def test_small_samples_get_fewer_bins_and_a_stated_noise_level():
    assert usable_bins(5000, 2000, 10) == 10 and usable_bins(50, 150, 10) == 2 and usable_bins(3, 3, 10) == 2
    rng = np.random.default_rng(1)
    same = [numeric_psi(rng.normal(size=200), rng.normal(size=200), 10) for _ in range(200)]
    assert np.mean(same) == pytest.approx(noise_level(10, 200, 200), rel=0.2)
    assert noise_level(10, 200, 200) > 0.05 > noise_level(10, 5000, 5000)


def test_categorical_psi_sees_new_values_and_a_new_mix_of_known_ones():
    rng = np.random.default_rng(0)
    share = 1 / np.arange(1, 201) ** 1.2
    ref = rng.choice(200, 20000, p=share / share.sum())  # 200 known values, a long tail
    same = rng.choice(200, 5000, p=share / share.sum())
    assert categorical_psi(ref, same, 200) < 0.05
    assert categorical_psi(ref, rng.choice(200, 5000), 200) > 0.25  # uniform over the known values
    unknown = same.copy()
    unknown[:1500] = 200  # 30% values the vocabulary does not hold
    assert categorical_psi(ref, unknown, 200) > 0.25


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """An event encoder on simulated events; the earliest 60% of them (reference), the latest 40%
    (current), and the current period shifted: amounts x 3, half the merchants new ones."""
    d = tmp_path_factory.mktemp("drift")
    events = simulate_events(150, days=21, seed=5).sort_values("ts", kind="stable").reset_index(drop=True)
    cut = int(0.6 * len(events))
    events.iloc[:cut].to_parquet(d / "reference.parquet")
    current = events.iloc[cut:].reset_index(drop=True)
    current.to_parquet(d / "current.parquet")
    rng = np.random.default_rng(0)
    shifted = current.assign(amount=current["amount"] * 3)
    new = rng.random(len(shifted)) < 0.5
    shifted.loc[new, "merchant"] = rng.choice([f"new{k}" for k in range(30)], int(new.sum()))
    shifted.to_parquet(d / "shifted.parquet")
    r = run("encoder", "train", d / "reference.parquet", "--id", "account", "--time", "ts", "--label", "is_fraud",
            "--unit", "event", "--max-len", "16", "--latent-dim", "4", "--epochs", "1", "--out", d / "enc")
    assert r.exit_code == 0, r.output
    return d


def _drift(d, current, out, *options):
    r = run("encoder", "drift", d / "enc", d / "reference.parquet", d / current, "--out", d / out, *options)
    metrics = json.loads((d / out / "metrics.json").read_text()) if (d / out / "metrics.json").exists() else None
    return r, metrics


def _inputs(metrics):
    return {f["name"]: f["psi"] for f in metrics["features"] if f["kind"] != "latent"}


def test_a_later_period_of_the_same_process_is_stable(tables):
    r, m = _drift(tables, "current.parquet", "same")
    assert r.exit_code == 0, r.output
    inputs = _inputs(m)
    assert set(inputs) >= {"amount", "merchant", "category", "channel", "country", "device"}
    assert max(inputs.values()) < 0.1, inputs
    latents = [f["name"] for f in m["features"] if f["kind"] == "latent"]
    assert sorted(latents) == sorted(f"z_{k}" for k in range(len(latents))) and latents
    md = (tables / "same" / "drift.md").read_text()
    assert (tables / "same" / "drift.png").stat().st_size > 0
    assert m["lengths"]["reference"]["entities"] > 0 and "unknown_share" in m
    assert all(f["bins"] == 10 and 0 < f["noise"] < 0.02 for f in m["features"])  # thousands of rows a side
    assert "| feature | kind | PSI | flag | bins | no-drift level |" in md


def test_shifted_amounts_and_merchants_are_flagged_and_fail_above_exits_3(tables):
    r, m = _drift(tables, "shifted.parquet", "shifted", "--fail-above", "0.25")
    assert r.exit_code == 3, r.output
    assert "above --fail-above 0.25" in r.output
    inputs = _inputs(m)
    assert inputs["amount"] >= 0.25 and inputs["merchant"] >= 0.25
    assert all(v < 0.1 for k, v in inputs.items() if k not in ("amount", "merchant")), inputs
    assert {"amount", "merchant"} <= set(m["flagged"])
    assert m["unknown_share"]["merchant"]["current"] > 0.4 > m["unknown_share"]["merchant"]["reference"]
    rows = (tables / "shifted" / "drift.md").read_text().split("| feature | kind | PSI | flag |")[1]
    assert rows.index("| merchant |") < rows.index("| channel |")  # sorted by PSI


def test_drift_reads_latent_files_of_the_same_encoder(tables):
    d = tables
    assert run("encoder", "encode", d / "enc", d / "current.parquet", "--out", d / "current_z.parquet").exit_code == 0
    r = run("encoder", "drift", d / "enc", d / "reference.parquet", d / "current_z.parquet", "--out", d / "z")
    assert r.exit_code == 0, r.output
    m = json.loads((d / "z" / "metrics.json").read_text())
    assert {f["kind"] for f in m["features"]} == {"latent"} and m["lengths"] is None


def test_drift_refuses_bad_input_in_one_line(tables, tmp_path):
    d = tables
    r = run("encoder", "drift", d / "enc", d / "reference.parquet", tmp_path / "nope.parquet", "--out", tmp_path / "r")
    assert r.exit_code == 1 and r.output.strip() == f"error: file '{tmp_path / 'nope.parquet'}' does not exist"
    assert not (tmp_path / "r").exists()
    r = run("encoder", "drift", d / "enc", d / "reference.parquet", d / "current.parquet", "--out", d / "same")
    assert r.exit_code == 1 and "exists already" in r.output
    r = run("encoder", "drift", d / "enc", d / "reference.parquet", d / "current.parquet", "--out", tmp_path / "r",
            "--fail-above", "-1")
    assert r.exit_code == 2 and "Invalid value for '--fail-above'" in r.output
