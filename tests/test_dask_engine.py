"""The Dask engine: a LocalCluster of 2 worker processes gives the single-process outputs row for row."""
import json

import numpy as np
import pandas as pd
import pytest
from cli_helpers import run, simulated_compare

pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """Events written as 3 Parquet files (a dataset), and the models of a small compare."""
    d = tmp_path_factory.mktemp("dask")

    def three_files(events):  # entities spread over several input files
        (d / "events").mkdir()
        for i, rows in enumerate(np.array_split(np.arange(len(events)), 3)):
            events.iloc[rows].to_parquet(d / "events" / f"{i}.parquet", index=False)
        return d / "events"
    return simulated_compare(d, 60, 21, 2, events_path=three_files)


def in_key_order(frame, keys):
    return frame.sort_values(keys, kind="stable").reset_index(drop=True)


def test_dask_encode_equals_single_process(job):
    enc = job / "report" / "models" / "encoder"
    assert run("encoder", "encode", enc, job / "events", "--out", job / "z.parquet").exit_code == 0
    r = run("encoder", "encode", enc, job / "events", "--out", job / "z_dask", "--engine", "dask",
            "--workers", "2", "--partitions", "3")
    assert r.exit_code == 0, r.output
    files = sorted((job / "z_dask").glob("part-*.parquet"))
    assert len(files) == 3 and not list(job.glob(".z_dask*"))
    one, many = pd.read_parquet(job / "z.parquet"), pd.read_parquet(job / "z_dask")
    assert list(many.columns) == list(one.columns) and len(many) == len(one)
    one, many = in_key_order(one, ["account", "ts"]), in_key_order(many, ["account", "ts"])
    z = [c for c in one.columns if c.startswith("z_")]
    pd.testing.assert_frame_equal(one.drop(columns=z), many.drop(columns=z))
    np.testing.assert_allclose(many[z].to_numpy(), one[z].to_numpy(), atol=1e-5)
    owners = pd.concat([pd.read_parquet(f, columns=["account"]).assign(file=f.name) for f in files])
    assert owners.groupby("account")["file"].nunique().max() == 1


def test_dask_score_equals_single_process(job):
    models = job / "report" / "models"
    args = ["pipeline", "score", "--encoder", models / "encoder", "--classifier", models / "hybrid", job / "events"]
    assert run(*args, "--out", job / "s.parquet").exit_code == 0
    r = run(*args, "--out", job / "s_dask", "--engine", "dask", "--workers", "2")
    assert r.exit_code == 0, r.output
    one = in_key_order(pd.read_parquet(job / "s.parquet"), ["account", "ts"])
    many = in_key_order(pd.read_parquet(job / "s_dask"), ["account", "ts"])
    pd.testing.assert_frame_equal(one.drop(columns="score"), many.drop(columns="score"))
    np.testing.assert_allclose(many["score"], one["score"], atol=1e-5)


def test_dask_options_need_the_dask_engine(job):
    r = run("encoder", "encode", job / "report" / "models" / "encoder", job / "events", "--out", job / "x",
            "--workers", "2")
    assert r.exit_code == 2 and "only applies with --engine dask" in r.output


def test_dask_engine_bad_id_is_one_line(job, tmp_path):
    frame = pd.read_parquet(job / "events").rename(columns={"account": "acct"})
    frame.to_parquet(tmp_path / "bad.parquet")
    r = run("encoder", "encode", job / "report" / "models" / "encoder", tmp_path / "bad.parquet", "--out",
            tmp_path / "z", "--engine", "dask", "--workers", "1")
    assert r.exit_code == 1 and r.output.strip().startswith("error: --id column 'account' is not in")
    assert not (tmp_path / "z").exists()


def test_xgboost_dask_training_writes_the_usual_classifier(job):
    z = job / "z_dask"
    if not z.exists():
        assert run("encoder", "encode", job / "report" / "models" / "encoder", job / "events", "--out", z,
                   "--engine", "dask", "--workers", "2").exit_code == 0
    r = run("classifier", "train", z, "--label", "is_fraud", "--out", job / "clf_dask", "--engine", "dask",
            "--workers", "2")
    assert r.exit_code == 0, r.output
    m = json.loads((job / "clf_dask" / "manifest.json").read_text())
    assert m["format"] == "seqae-classifier" and m["fit"]["engine"] == "dask" and m["fit"]["split"] == "time"
    assert m["features"] == [c for c in pd.read_parquet(z).columns if c.startswith("z_")]
    assert m["encoder_id"] == json.loads((job / "report" / "models" / "encoder" / "manifest.json").read_text())["encoder_id"]
    r = run("classifier", "predict", job / "clf_dask", z, "--out", job / "p.parquet")
    assert r.exit_code == 0, r.output
    p = pd.read_parquet(job / "p.parquet")
    assert p["score"].between(0, 1).all() and len(p) == len(pd.read_parquet(z))
    assert 0 < m["validation_metrics"]["roc_auc"] <= 1
