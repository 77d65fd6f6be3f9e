"""``seqae classifier`` commands through CliRunner, on a latent file written by the encoder."""
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from pipelines.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def latents(tmp_path_factory):
    d = tmp_path_factory.mktemp("lat")
    from tests.conftest import make_events
    make_events(40).to_parquet(d / "ev.parquet")
    (d / "narrow.toml").write_text("kernel_features = 84\n")  # the classifier is under test: a narrower code
    r = run("encoder", "train", d / "ev.parquet", "--id", "account", "--time", "ts", "--label", "label",
            "--epochs", "2", "--latent-dim", "4", "--config", d / "narrow.toml", "--out", d / "enc")
    assert r.exit_code == 0, r.output
    assert run("encoder", "encode", d / "enc", d / "ev.parquet", "--out", d / "z.parquet").exit_code == 0
    return d


def test_train_predict_evaluate(latents, tmp_path):
    d = latents
    r = run("classifier", "train", d / "z.parquet", "--label", "label", "--out", tmp_path / "c")
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "c/manifest.json").read_text())
    assert m["encoder_id"] == json.loads((d / "enc/manifest.json").read_text())["encoder_id"]
    r = run("classifier", "predict", tmp_path / "c", d / "z.parquet", "--out", tmp_path / "p.parquet", "--explain", "1")
    assert r.exit_code == 0, r.output
    p = pd.read_parquet(tmp_path / "p.parquet")
    assert list(p.columns[:4]) == ["account", "prediction", "score", "decision"] and "explain_1" in p
    assert set(p.prediction) <= {0, 1}
    r = run("classifier", "evaluate", tmp_path / "c", d / "z.parquet", "--label", "label", "--out", tmp_path / "m.json")
    assert r.exit_code == 0, r.output
    written = json.loads((tmp_path / "m.json").read_text())
    assert {"roc_auc", "pr_auc", "f1", "brier", "recall_at_1pct_fpr", "precision_at_budget"} <= set(written)
    assert sum(row["count"] for row in written["reliability"]) == len(p) and "reliability" in r.output
    assert (tmp_path / "m_pr.png").exists() and (tmp_path / "m_roc.png").exists()


def test_evaluate_reads_labels_written_as_text_as_the_classes_they_name(latents, tmp_path, monkeypatch):
    d = latents
    assert run("classifier", "train", d / "z.parquet", "--label", "label", "--out", tmp_path / "c").exit_code == 0
    table = pq.read_table(d / "z.parquet")  # labels 0/1; the file's metadata (encoder_id) is kept
    i = table.schema.get_field_index("label")
    pq.write_table(table.set_column(i, "label", table["label"].cast("string")), tmp_path / "z_text.parquet")
    import classifier.metrics
    drawn = []
    monkeypatch.setattr(classifier.metrics, "plot_curves", lambda curves, path, kind: drawn.append(curves["classifier"][0]))
    for name, source in (("numbers", d / "z.parquet"), ("text", tmp_path / "z_text.parquet")):
        r = run("classifier", "evaluate", tmp_path / "c", source, "--label", "label", "--out", tmp_path / f"{name}.json")
        assert r.exit_code == 0, r.output
    numbers, text = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("numbers", "text"))
    assert text == numbers and 0 < numbers["positives"] < numbers["n"]
    assert len(drawn) == 4 and all(np.array_equal(y, drawn[0]) for y in drawn) and drawn[0].sum() == numbers["positives"]


def test_train_select_records_the_choice_and_predicts_from_the_full_table(latents, tmp_path):
    d = latents
    r = run("classifier", "train", d / "z.parquet", "--label", "label", "--out", tmp_path / "c", "--select", "2")
    assert r.exit_code == 0, r.output
    width = sum(c.startswith("z_") for c in pq.read_schema(d / "z.parquet").names)  # pooled and summary channels
    assert f"2 features (selected from {width})" in r.output
    m = json.loads((tmp_path / "c/manifest.json").read_text())
    assert m["features"] == m["selection"]["kept"] and len(m["features"]) == 2 and m["selection"]["k"] == 2
    r = run("classifier", "predict", tmp_path / "c", d / "z.parquet", "--out", tmp_path / "p.parquet")
    assert r.exit_code == 0, r.output
    for bad in ("0", "x"):
        r = run("classifier", "train", d / "z.parquet", "--label", "label", "--out", tmp_path / "c2", "--select", bad)
        assert r.exit_code == 2 and "Invalid value for '--select'" in r.output
    r = run("classifier", "train", d / "z.parquet", "--label", "label", "--out", tmp_path / "c2", "--select", "2",
            "--engine", "dask", "--workers", "1")
    assert r.exit_code == 2 and "--select does not apply with --engine dask" in r.output


def test_features_join_and_unmatched_keys(latents, tmp_path):
    d = latents
    z = pd.read_parquet(d / "z.parquet")
    pd.DataFrame({"account": z.account, "extra": np.arange(len(z), dtype=float)}).to_parquet(tmp_path / "f.parquet")
    r = run("classifier", "train", d / "z.parquet", "--label", "label", "--out", tmp_path / "c",
            "--features", tmp_path / "f.parquet")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "c/manifest.json").read_text())["features"][-1] == "extra"
    pd.DataFrame({"account": ["nobody"], "extra": [1.0]}).to_parquet(tmp_path / "g.parquet")
    r = run("classifier", "train", d / "z.parquet", "--label", "label", "--out", tmp_path / "c2",
            "--features", tmp_path / "g.parquet")
    assert r.exit_code == 1 and r.output.startswith(f"error: {len(z)} of {len(z)} rows of '{d / 'z.parquet'}' have no match")


def test_other_encoder_is_refused(latents, tmp_path):
    d = latents
    assert run("classifier", "train", d / "z.parquet", "--label", "label", "--out", tmp_path / "c").exit_code == 0
    z = pd.read_parquet(d / "z.parquet")
    z.to_parquet(tmp_path / "plain.parquet")  # pandas writes no encoder_id
    r = run("classifier", "predict", tmp_path / "c", tmp_path / "plain.parquet", "--out", tmp_path / "p.parquet")
    assert r.exit_code == 1 and "come from encoder no encoder, but classifier" in r.output
    assert not (tmp_path / "p.parquet").exists()


@pytest.mark.parametrize("mutate, extra, message", [
    (lambda z: z.drop(columns="label"), [], "label column 'label' is not in"),
    (lambda z: z.assign(label=1), [], "label column 'label' in '{p}' holds a single class (1): nothing to learn"),
    (lambda z: z.assign(label=z.label.where(z.index > 2)), [], "label column 'label' in '{p}' is missing for 3 of"),
    (lambda z: z[["account", "label"]], [], "'{p}' has no z_* columns"),
    (lambda z: z.assign(z_0=np.nan), [], "feature column 'z_0' in '{p}' has"),
    (lambda z: z, ["--policy", "best"], "unknown threshold policy 'best'"),
])
def test_bad_training_input(latents, tmp_path, mutate, extra, message):
    p = tmp_path / "z.parquet"
    mutate(pd.read_parquet(latents / "z.parquet")).to_parquet(p)
    r = run("classifier", "train", p, "--label", "label", "--out", tmp_path / "c", *extra)
    assert r.exit_code == 1 and r.output.startswith("error: " + message.format(p=p)), r.output
    assert not (tmp_path / "c").exists()


def test_drop_unlabeled(latents, tmp_path):
    p = tmp_path / "z.parquet"
    z = pd.read_parquet(latents / "z.parquet")
    z.assign(label=z.label.where(z.index > 2)).to_parquet(p)
    r = run("classifier", "train", p, "--label", "label", "--out", tmp_path / "c", "--drop-unlabeled")
    assert r.exit_code == 0, r.output


def test_single_row_classes_train_and_say_where_they_were_validated(tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(12, 3)) + np.arange(12)[:, None], columns=["z_0", "z_1", "z_2"])
    df.insert(0, "series", range(12))
    df["label"] = [f"c{i}" for i in range(12)]  # every class one row, as Fungi's TRAIN
    df.to_parquet(tmp_path / "z.parquet")
    r = run("classifier", "train", tmp_path / "z.parquet", "--label", "label", "--out", tmp_path / "c")
    assert r.exit_code == 0, r.output
    assert "on the training rows: every class has a single row" in r.output
    m = json.loads((tmp_path / "c/manifest.json").read_text())
    assert m["fit"]["split"].startswith("none") and len(m["classes"]) == 12


def test_train_a_stacked_model_on_base_features(latents, tmp_path):
    d = latents
    r = run("classifier", "train", d / "z.parquet", "--label", "label", "--out", tmp_path / "c", "--base-features", "z_0,z_1")
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "c/manifest.json").read_text())
    assert m["models"][0]["columns"] == ["z_0", "z_1"] and m["fit"]["stacked"]["base_features"] == ["z_0", "z_1"]
    assert "rounds on 2 base features, then" in r.output
    r = run("classifier", "predict", tmp_path / "c", d / "z.parquet", "--out", tmp_path / "p.parquet", "--explain", "2")
    assert r.exit_code == 0, r.output
    for extra, message in ((["--base-features", "z_0,nope"], "'nope' is not a feature column of"),
                           (["--base-features", "z_0", "--select", "2"], "cannot be combined with --select")):
        r = run("classifier", "train", d / "z.parquet", "--label", "label", "--out", tmp_path / "c2", *extra)
        assert r.exit_code == 2 and message in r.output and "Invalid value for --base-features" in r.output
        assert not (tmp_path / "c2").exists()
