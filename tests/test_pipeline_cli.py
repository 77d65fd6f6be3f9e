"""``seqae pipeline`` commands through CliRunner: compare, score, demo, and their bad inputs."""
import json

import pandas as pd
import pytest
from cli_helpers import FAST, run, simulated_compare
from sklearn import metrics as skm


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    return simulated_compare(tmp_path_factory.mktemp("cmp"), 60, 21, 1, options=("--verbose", "--variants"))


def test_compare_fits_the_variants_of_hybrid_only_when_asked(tmp_path):
    d = simulated_compare(tmp_path, 40, 14, 5)
    m = json.loads((d / "report" / "metrics.json").read_text())
    assert m["variants"] == [] and not {"hybrid_joint", "hybrid_recon", "hybrid_full"} & set(m["models"])
    assert {"raw_last", "aggregates", "latent", "hybrid", "untrained", "hybrid_untrained"} <= set(m["models"])
    assert "hybrid_joint_vs_aggregates" not in m["paired"] and "hybrid_vs_aggregates" in m["paired"]
    assert "`--variants`" in (d / "report" / "report.md").read_text()
    models = d / "report" / "models"
    assert not (models / "hybrid_recon").exists()
    # the stacked models start from the aggregates model itself (fitted once, read by each)
    for name in ("hybrid", "hybrid_untrained"):
        assert (models / name / "model.ubj").read_bytes() == (models / "aggregates" / "model.ubj").read_bytes()


def test_compare_writes_report_and_metrics(compared):
    rep = compared / "report"
    names = {p.name for p in rep.iterdir()}
    assert {"report.md", "metrics.json", "predictions.parquet", "pr_curves.png", "metric_bars.png",
            "encoder_loss.png", "models"} <= names
    m = json.loads((rep / "metrics.json").read_text())
    assert {"raw_last", "aggregates", "latent", "hybrid"} <= set(m["models"])
    for model in m["models"].values():
        assert {"pr_auc", "roc_auc", "pr_auc_ci", "roc_auc_ci"} <= set(model)
    text = (rep / "report.md").read_text()
    assert "hybrid vs aggregates:" in text and "| aggregates |" in text and "train:" in text
    layout = json.loads((rep / "models" / "encoder" / "manifest.json").read_text())["code_layout"]
    hybrid = json.loads((rep / "models" / "hybrid" / "manifest.json").read_text())["features"]
    full = json.loads((rep / "models" / "hybrid_full" / "manifest.json").read_text())["features"]
    assert [f for f in hybrid if f.startswith("z_")] == list(layout["surprise"])  # the event codes, no pooled ones
    assert [f for f in full if f.startswith("z_")] == layout["pooled"] + list(layout["surprise"])
    assert "`hybrid_full`: every code channel" in text
    # the hybrid models are stacked on the aggregates model; hybrid_joint is one model of hybrid's columns
    aggregates = json.loads((rep / "models" / "aggregates" / "manifest.json").read_text())["features"]
    for name in ("hybrid", "hybrid_full", "hybrid_recon"):
        fit = json.loads((rep / "models" / name / "manifest.json").read_text())["fit"]
        assert fit["stacked"]["base_features"] == aggregates
    joint = json.loads((rep / "models" / "hybrid_joint" / "manifest.json").read_text())
    assert joint["features"] == hybrid and "stacked" not in joint["fit"] and "hybrid_joint" in m["models"]
    assert "each `hybrid` model is stacked" in text and m["variants"] == ["hybrid_full", "hybrid_joint", "hybrid_recon"]


def test_compare_verbose_prints_where_the_time_went(compared):
    seconds = json.loads((compared / "report" / "metrics.json").read_text())["stage_seconds"]
    assert {"read", "split", "encoder training", "preprocessing", "baseline features", "codes",
            "untrained twin codes", "classifier hybrid", "evaluation"} <= set(seconds)
    assert all(s >= 0 for s in seconds.values()) and seconds["encoder training"] > 0
    out = (compared / "output.txt").read_text()
    assert "stage seconds:" in out and "encoder training" in out and "classifier hybrid" in out
    total = float(out.split("total", 1)[1].split()[0])
    assert total == pytest.approx(sum(seconds.values()), abs=0.2)


def test_compare_reports_whether_training_paid_against_the_untrained_twin(compared):
    rep = compared / "report"
    m = json.loads((rep / "metrics.json").read_text())
    assert {"untrained", "hybrid_untrained"} <= set(m["models"])
    for pair in ("latent_vs_untrained", "hybrid_vs_hybrid_untrained"):
        d = m["paired"][pair]["pr_auc"]
        assert d["ci"][0] <= d["diff"] <= d["ci"][1] or d["ci"][0] == d["ci"][1]
        assert d["diff"] == pytest.approx(m["models"][pair.split("_vs_")[0]]["pr_auc"] - m["models"][pair.split("_vs_")[1]]["pr_auc"])
    twin = json.loads((rep / "models" / "untrained_encoder" / "manifest.json").read_text())
    encoder = json.loads((rep / "models" / "encoder" / "manifest.json").read_text())
    assert twin["untrained"] and twin["training"]["twin_of"] == encoder["encoder_id"] == m["encoder_id"]
    assert twin["encoder_id"] == m["untrained_encoder_id"] != m["encoder_id"]
    assert twin["preprocessing"] == encoder["preprocessing"] and twin["code_layout"] == encoder["code_layout"]
    # the controls read the twin's codes under the same names, in the same roles
    latent = json.loads((rep / "models" / "latent" / "manifest.json").read_text())
    untrained = json.loads((rep / "models" / "untrained" / "manifest.json").read_text())
    assert untrained["features"] == ["u_" + f for f in latent["features"]]
    assert untrained["encoder_id"] == twin["encoder_id"] and latent["encoder_id"] == encoder["encoder_id"]
    hybrid = json.loads((rep / "models" / "hybrid" / "manifest.json").read_text())
    control = json.loads((rep / "models" / "hybrid_untrained" / "manifest.json").read_text())
    assert control["features"] == [("u_" + f if f.startswith("z_") else f) for f in hybrid["features"]]
    text = (rep / "report.md").read_text()
    assert "## Controls" in text and "- Did training pay? latent vs untrained:" in text
    assert "hybrid vs hybrid_untrained:" in text


def test_report_numbers_equal_those_recomputed_from_predictions(compared):
    rep = compared / "report"
    m = json.loads((rep / "metrics.json").read_text())
    p = pd.read_parquet(rep / "predictions.parquet")
    for name, values in m["models"].items():
        assert values["pr_auc"] == pytest.approx(skm.average_precision_score(p.is_fraud, p[f"score_{name}"]), abs=1e-12)
        assert values["roc_auc"] == pytest.approx(skm.roc_auc_score(p.is_fraud, p[f"score_{name}"]), abs=1e-12)
        assert f"{values['pr_auc']:.3f} [{values['pr_auc_ci'][0]:.3f}" in (rep / "report.md").read_text()


def test_test_period_comes_after_training(compared):
    m = json.loads((compared / "report" / "metrics.json").read_text())
    ev = pd.read_parquet(compared / "events.parquet")
    p = pd.read_parquet(compared / "report" / "predictions.parquet")
    assert len(p) == m["n_test"] and p.ts.min() > ev.ts.quantile(0.79)


def test_score_is_identical_on_rerun(compared, tmp_path):
    models = compared / "report" / "models"
    outs = []
    for i in range(2):
        out = tmp_path / f"s{i}.parquet"
        r = run("pipeline", "score", "--encoder", models / "encoder", "--classifier", models / "hybrid",
                compared / "events.parquet", "--out", out, "--batch-size", "300")
        assert r.exit_code == 0, r.output
        outs.append(pd.read_parquet(out))
    pd.testing.assert_frame_equal(outs[0], outs[1])
    assert list(outs[0].columns) == ["account", "ts", "prediction", "score", "decision"]
    assert len(outs[0]) == len(pd.read_parquet(compared / "events.parquet"))


def test_score_in_entity_buckets_gives_the_same_scores(compared, tmp_path):
    models = compared / "report" / "models"
    args = ["pipeline", "score", "--encoder", models / "encoder", "--classifier", models / "hybrid",
            compared / "events.parquet"]
    assert run(*args, "--out", tmp_path / "whole.parquet").exit_code == 0
    r = run(*args, "--out", tmp_path / "buckets.parquet", "--bucket-rows", "500")
    assert r.exit_code == 0, r.output
    whole, buckets = pd.read_parquet(tmp_path / "whole.parquet"), pd.read_parquet(tmp_path / "buckets.parquet")
    n = len(pd.read_parquet(compared / "events.parquet"))
    assert n > 2 * 500 and len(buckets) == len(whole) == n
    assert not whole.equals(buckets)  # rows come bucket by bucket ...
    key = ["account", "ts"]
    pd.testing.assert_frame_equal(whole.sort_values(key, kind="stable").reset_index(drop=True),  # ... same scores
                                  buckets.sort_values(key, kind="stable").reset_index(drop=True), atol=1e-6)


def test_score_refuses_a_classifier_of_another_encoder(compared, tmp_path):
    models = compared / "report" / "models"
    other = tmp_path / "enc2"
    r = run("encoder", "train", compared / "events.parquet", "--id", "account", "--time", "ts", "--label", "is_fraud",
            "--epochs", "1", "--max-len", "4", "--latent-dim", "4", "--out", other)
    assert r.exit_code == 0, r.output
    r = run("pipeline", "score", "--encoder", other, "--classifier", models / "latent",
            compared / "events.parquet", "--out", tmp_path / "s.parquet")
    assert r.exit_code == 1 and "was trained on encoder" in r.output and not (tmp_path / "s.parquet").exists()


def test_score_needs_the_encoder_schema(compared, tmp_path):
    models = compared / "report" / "models"
    pd.DataFrame({"account": ["a"], "ts": [1.0], "other": [2.0]}).to_parquet(tmp_path / "x.parquet")
    r = run("pipeline", "score", "--encoder", models / "encoder", "--classifier", models / "hybrid",
            tmp_path / "x.parquet", "--out", tmp_path / "s.parquet")
    assert r.exit_code == 1
    assert r.output.startswith(f"error: '{tmp_path / 'x.parquet'}' shares no feature column with the encoder's schema")


def test_compare_bad_inputs(compared, tmp_path):
    ev = pd.read_parquet(compared / "events.parquet")
    ev.assign(is_fraud=0).to_parquet(tmp_path / "one.parquet")
    r = run("pipeline", "compare", tmp_path / "one.parquet", "--id", "account", "--time", "ts", "--label", "is_fraud",
            "--out", tmp_path / "r", *FAST)
    assert r.exit_code == 1 and "holds a single class in the train period" in r.output
    ev.assign(ts=ev.ts.min()).to_parquet(tmp_path / "flat.parquet")
    r = run("pipeline", "compare", tmp_path / "flat.parquet", "--id", "account", "--time", "ts", "--label", "is_fraud",
            "--out", tmp_path / "r", *FAST)
    assert r.exit_code == 1 and "is too short to split" in r.output
    ev.drop(columns="country").to_parquet(tmp_path / "test.parquet")
    r = run("pipeline", "compare", compared / "events.parquet", "--id", "account", "--time", "ts", "--label",
            "is_fraud", "--test", tmp_path / "test.parquet", "--out", tmp_path / "r", *FAST)
    assert r.exit_code == 1
    assert r.output == f"error: test table '{tmp_path / 'test.parquet'}' lacks column 'country' of '{compared / 'events.parquet'}'\n"
    assert not (tmp_path / "r").exists()


def test_compare_with_a_label_delay_and_feature_selection(tmp_path):
    """One run for both options: the label gap is left out and stated; --select adds the selected
    aggregates and hybrid_joint models, each compared with its full self."""
    from pipelines.simulate.demo import simulate_events
    events = tmp_path / "events.parquet"
    simulate_events(30, days=14, seed=1, fraud_share=0.5).to_parquet(events)
    r = run("pipeline", "compare", events, "--id", "account", "--time", "ts", "--label", "is_fraud",
            "--out", tmp_path / "r", "--label-delay", "3d", "--select", "6", *FAST)
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert {"aggregates_select6", "hybrid_joint_select6"} <= set(m["models"])
    assert {"aggregates_select6_vs_aggregates", "hybrid_joint_select6_vs_hybrid_joint"} <= set(m["paired"])
    assert len(m["select"]["hybrid_joint_select6"]["kept"]) == 6 and m["select"]["hybrid_joint_select6"]["from"] > 6
    kept = json.loads((tmp_path / "r" / "models" / "hybrid_joint_select6" / "manifest.json").read_text())["features"]
    assert kept == m["select"]["hybrid_joint_select6"]["kept"]
    assert "**Feature selection.**" in (tmp_path / "r" / "report.md").read_text() and "keeps 6 of" in r.output
    gap = json.loads((tmp_path / "r" / "metrics.json").read_text())["label_delay"]
    assert gap["delay"] == "3d" and gap["seconds"] == 3 * 86400
    test_from, until = pd.Timestamp(gap["test_from"]), pd.Timestamp(gap["labels_until"])
    assert test_from - until == pd.Timedelta("3d")
    ts = pd.read_parquet(events).ts
    assert gap["rows_in_gap"] == int(((ts > until) & (ts <= test_from)).sum()) > 0
    assert gap["rows_labelled"] == int((ts <= until).sum())
    assert f"**Label delay 3d.** The classifiers learn from labels up to {gap['labels_until']}" in \
        (tmp_path / "r" / "report.md").read_text()
    assert f"labels up to {gap['labels_until']}" in r.output
    p = pd.read_parquet(tmp_path / "r" / "predictions.parquet")
    assert p.ts.min() > test_from  # the test period is the same; only the classifiers' labels end earlier
    r = run("pipeline", "compare", events, "--id", "account", "--time", "ts", "--label", "is_fraud",
            "--out", tmp_path / "r2", "--label-delay", "soon", *FAST)
    assert r.exit_code == 2 and "Invalid value for '--label-delay'" in r.output
    r = run("pipeline", "compare", events, "--id", "account", "--time", "ts", "--label", "is_fraud",
            "--out", tmp_path / "r2", "--label-delay", "365d", *FAST)
    assert r.exit_code == 1 and "leaves no labelled row before the test period" in r.output


def test_label_delay_needs_periods_in_time(tmp_path):
    """Series on one clock are split into random entities, where a label delay means nothing."""
    frame = pd.DataFrame({"series": [f"s{i}" for i in range(20) for _ in range(5)], "t": list(range(5)) * 20,
                          "x": range(100), "label": [i % 2 for i in range(20) for _ in range(5)]})
    frame.to_parquet(tmp_path / "series.parquet")
    r = run("pipeline", "compare", tmp_path / "series.parquet", "--id", "series", "--time", "t", "--label", "label",
            "--unit", "entity", "--label-delay", "1", "--out", tmp_path / "r", *FAST)
    assert r.exit_code == 1 and "--label-delay needs periods in time" in r.output and not (tmp_path / "r").exists()


def test_demo_runs_end_to_end(tmp_path):
    r = run("pipeline", "demo", "--out", tmp_path / "demo", "--accounts", "60", "--days", "14", "--epochs", "1", "--bootstrap", "10")
    assert r.exit_code == 0, r.output
    assert "| hybrid |" in r.output and "hybrid vs aggregates" in r.output
    assert "Did training pay? latent vs untrained: " in r.output and "| untrained |" in r.output
    m = json.loads((tmp_path / "demo/report/metrics.json").read_text())
    assert m["encoder_preset"] == {"max_len_cap": 32, "max_sequences_per_epoch": 5000, "patience": 3}  # --epochs 1 won
    manifest = json.loads((tmp_path / "demo/report/models/encoder/manifest.json").read_text())
    assert manifest["preset"] == m["encoder_preset"] and manifest["config"]["data"]["max_len_cap"] == 32
    assert "trained with the command's preset max_len_cap=32" in (tmp_path / "demo/report/report.md").read_text()
    r = run("pipeline", "compare", "--help")
    assert "preset max_len_cap=32, epochs=12, max_sequences_per_epoch=5000, patience=3" in " ".join(r.output.split())
    assert (tmp_path / "demo/report/report.md").exists() and (tmp_path / "demo/scores.parquet").exists()
    r = run("pipeline", "demo", "--out", tmp_path / "demo", "--accounts", "60")
    assert r.exit_code == 1 and "exists already" in r.output


def test_entity_compare_sets_the_learned_code_against_its_untrained_blocks(tmp_path):
    """Series: the random kernels and statistics are a baseline row of their own (``minirocket``)."""
    import numpy as np
    rng = np.random.default_rng(0)
    rows = [{"series": i, "t": t, "x": float(np.sin(t / (2 + i % 2)) + rng.normal(0, 0.3)), "label": i % 2}
            for i in range(60) for t in range(24)]
    pd.DataFrame(rows).to_parquet(tmp_path / "series.parquet")
    (tmp_path / "c.toml").write_text("[encoder]\nkernel_features = 84\nhidden_size = 8\n")
    r = run("pipeline", "compare", tmp_path / "series.parquet", "--id", "series", "--time", "t", "--label", "label",
            "--unit", "entity", "--config", tmp_path / "c.toml", "--out", tmp_path / "r", *FAST)
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert {"minirocket", "untrained", "latent"} <= set(m["models"]) and "latent_vs_minirocket" in m["paired"]
    layout = json.loads((tmp_path / "r" / "models" / "encoder" / "manifest.json").read_text())["code_layout"]
    features = {name: json.loads((tmp_path / "r" / "models" / name / "manifest.json").read_text())["features"]
                for name in ("minirocket", "latent", "untrained")}
    assert features["minirocket"] == [*layout["summary"], *layout["kernels"]] and len(layout["kernels"]) == 84
    assert not set(features["latent"]) & set(features["minirocket"])  # the learned blocks only
    assert features["untrained"] == ["u_" + f for f in features["latent"]]
    assert "Do the learned blocks beat the untrained features? latent vs minirocket:" in r.output
