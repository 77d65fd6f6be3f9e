"""scripts/benchmark_fraud.py: the hand-made order features of its control, and the printed table."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import benchmark_fraud  # noqa: E402


def test_sequence_features_read_each_entity_up_to_its_row():
    # entity 0: gaps 10, 10, 10, then 70; amounts 1, 2, 3, 2, 5. entity 1: two rows.
    times = np.array([0.0, 10, 20, 30, 100, 0, 5])
    amount = np.array([1.0, 2, 3, 2, 5, 7, 8])
    codes = np.array([0, 0, 0, 0, 0, 1, 1])
    f = benchmark_fraud.sequence_features(times, amount, codes)
    gaps = np.log1p([10.0, 10, 10, 70])
    assert f["seq_gap_std3"].tolist()[:3] == [-1, -1, -1]  # fewer than 3 gaps so far
    assert f["seq_gap_std3"][3] == 0  # a steady cadence
    assert f["seq_gap_std3"][4] == pytest.approx(np.std(gaps[1:], ddof=1), rel=1e-5)
    assert f["seq_gap_change"].tolist()[:3] == [-1, -1, 0]
    assert f["seq_gap_change"][4] == pytest.approx(gaps[3] - gaps[2], rel=1e-5)
    assert f["seq_amount_rises"].tolist() == [0, 1, 2, 0, 1, 0, 1]  # restarts at a fall and at a new entity
    assert f["seq_amount_std3"][2] == pytest.approx(np.std(np.log([1.0, 2, 3]), ddof=1), rel=1e-5)
    assert (f.iloc[5:][["seq_gap_std3", "seq_gap_std5", "seq_amount_std3"]] == -1).all().all()
    # a later row never changes an earlier row's features
    cut = benchmark_fraud.sequence_features(times[:4], amount[:4], codes[:4])
    assert np.array_equal(cut.to_numpy(), f.iloc[:4].to_numpy())


def test_tables_pair_the_hybrid_with_every_control_and_give_each_block(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "argv", ["benchmark_fraud.py", "--seeds", "1", "--accounts", "40", "--days", "10",
                                      "--set", "epochs=2", "--json", str(tmp_path / "r.json")])
    benchmark_fraud.main()
    out = capsys.readouterr().out.splitlines()
    head = next(i for i, line in enumerate(out) if line.startswith("| seed |"))
    for a, b in benchmark_fraud.PAIRS:
        assert f"{a} - {b} [95%]" in out[head]
        assert any(line.startswith(f"{a} - {b}: 95% interval above zero in ") for line in out)
    row = [cell.strip() for cell in out[head + 2].strip("|").split("|")]
    assert row[0] == "1" and len(row) == 1 + 6 + len(benchmark_fraud.PAIRS) + 1
    for cell in row[7:7 + len(benchmark_fraud.PAIRS)]:  # each paired difference inside its interval
        d, interval = cell.split(" ", 1)
        low, high = (float(v) for v in interval.strip("[]").split(", "))
        assert low <= float(d) <= high
    blocks = [line.split("|")[1].strip() for line in out if line.startswith("| block:")]
    assert blocks == ["block:pooled", "block:surprise"]  # the event code's blocks, each alone
    runs = json.loads((tmp_path / "r.json").read_text())
    assert set(runs["1"]["models"]) >= {"aggregates", "latent", "untrained", "hybrid", "hybrid_untrained"}


def test_simulator_option_picks_the_generator():
    demo = benchmark_fraud.simulate("demo", 20, 7, 0)
    terminals = benchmark_fraud.simulate("terminals", 20, 7, 0)
    assert "merchant" in demo.columns and "terminal" not in demo.columns
    assert "terminal" in terminals.columns and "merchant" not in terminals.columns
    assert terminals.account.str.startswith("c").all()
