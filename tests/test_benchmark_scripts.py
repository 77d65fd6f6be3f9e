"""The benchmark and attempt scripts whose results docs/benchmarks.md reports compute what they say."""
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import attempt_block_blend  # noqa: E402
import benchmark_ucr  # noqa: E402


def test_the_blend_averages_log_probabilities_so_a_confident_model_outvotes_a_hesitant_one():
    kernels = np.array([[0.9, 0.1], [0.45, 0.55], [0.2, 0.8]])  # (rows, classes)
    rest = np.array([[0.6, 0.4], [0.01, 0.99], [0.7, 0.3]])
    picked = attempt_block_blend.blended([kernels, rest], ["a", "b"])
    # row 0: both say a; row 1: rest is sure of b; row 2: log(0.2*0.7) < log(0.8*0.3), so b
    assert list(picked) == ["a", "b", "b"]
    assert list(attempt_block_blend.blended([rest, kernels], ["a", "b"])) == list(picked)  # equal weights


def test_the_blend_summary_pairs_by_seed_and_averages_over_sets():
    def record(name, seed, trained_blend, twin_blend):
        acc = {f"{w}:{row}": 0.5 for w in ("trained", "twin") for row in attempt_block_blend.ROWS}
        return {"set": name, "seed": seed, "acc": acc | {"trained:blend": trained_blend, "twin:blend": twin_blend}}
    table = attempt_block_blend.summary([record("A", 0, 0.8, 0.6), record("A", 1, 0.6, 0.7), record("B", 0, 0.5, 0.5)])
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()}
    assert "| +0.050 [-0.100, +0.200] (1/2 > 0, 1 < 0) |" in rows["A"]  # trained - twin under the blend, paired by seed
    assert rows["mean over sets"].split(" | ")[-2] == "+0.025"  # (0.05 + 0) / 2 sets


def test_the_svm_protocol_takes_a_hard_margin_on_small_sets_and_cross_validates_c_on_larger_ones():
    rng = np.random.default_rng(0)
    y = np.repeat(["a", "b"], 30)
    z = rng.normal(size=(60, 4)) + np.where(y == "a", 0.0, 2.0)[:, None]  # two shifted clouds
    assert np.isinf(benchmark_ucr.fit_svm(z[::2], y[::2]).C)  # 30 series: under 50, no cross-validation
    model = benchmark_ucr.fit_svm(z, y)
    assert np.isfinite(model.C) and model.C in benchmark_ucr.SVM_C  # 60 series, 30 a class: C from the grid
    assert np.mean(model.predict(z + 0.01) == y) > 0.9


def test_the_svm_table_pairs_trained_and_twin_by_seed_and_sets_them_beside_the_published_encoders():
    def run(trained, twin):
        return {"svm": {"learned": trained, "twin:learned": twin}, "accuracy": {"learned": 0.5}}
    table = benchmark_ucr.probe_table({"ArrowHead": [run(0.9, 0.7), run(0.7, 0.8)]})
    row = next(line for line in table.splitlines() if line.startswith("| ArrowHead"))
    assert "| 0.800 [0.700, 0.900] | 0.750 [0.700, 0.800] | +0.050 [-0.100, +0.200] (1/2 > 0, 1 < 0) |" in row
    assert "| 0.857 | 0.766 |" in row  # TS2Vec and T-Loss as published
    assert "learned 0.800, twin:learned 0.750 (lift +0.050); best of TS2Vec and T-Loss 0.857" in table
