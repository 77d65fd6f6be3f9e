"""Reachable bad inputs and tampered artefacts: one ``error:`` line naming the file and the key or
column, exit status 1, nothing written; never an internal error."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from tests.cli_helpers import run


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    from tests.conftest import make_events
    d = tmp_path_factory.mktemp("bad")
    make_events(16).to_parquet(d / "events.parquet")
    (d / "c.toml").write_text("[encoder]\nhidden_size = 8\nlatent_dim = 4\nbatch_size = 4\nepochs = 2\n")
    r = run("encoder", "train", d / "events.parquet", "--id", "account", "--time", "ts", "--label", "label",
            "--config", d / "c.toml", "--out", d / "enc")
    assert r.exit_code == 0, r.output
    assert run("encoder", "encode", d / "enc", d / "events.parquet", "--out", d / "z.parquet").exit_code == 0
    r = run("classifier", "train", d / "z.parquet", "--label", "label", "--out", d / "clf")
    assert r.exit_code == 0, r.output
    return d


def one_error(r, *fragments):
    assert r.exit_code == 1, r.output
    assert r.output.startswith("error: ") and r.output.count("\n") == 1 and "internal error" not in r.output, r.output
    for f in fragments:
        assert f in r.output, r.output


def edited(src, dst, manifest_change):
    shutil.copytree(src, dst)
    m = json.loads((dst / "manifest.json").read_text())
    manifest_change(m)
    (dst / "manifest.json").write_text(json.dumps(m))
    return dst


def test_a_manifest_without_a_key_names_the_file_and_the_key(made, tmp_path):
    enc = edited(made / "enc", tmp_path / "enc", lambda m: m.pop("schema"))
    one_error(run("encoder", "inspect", enc), "manifest.json' lacks the key 'schema'")
    one_error(run("encoder", "encode", enc, made / "events.parquet", "--out", tmp_path / "z.parquet"), "'schema'")
    clf = edited(made / "clf", tmp_path / "clf", lambda m: m.pop("threshold_policy"))
    one_error(run("classifier", "predict", clf, made / "z.parquet", "--out", tmp_path / "p.parquet"),
              "lacks the key 'threshold_policy'")
    assert not (tmp_path / "z.parquet").exists() and not (tmp_path / "p.parquet").exists()


def test_artefact_files_outside_their_directory_are_refused(made, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    shutil.copy(made / "enc" / "model.safetensors", tmp_path / "elsewhere" / "model.safetensors")
    enc = edited(made / "enc", tmp_path / "enc", lambda m: m.update(weights="../elsewhere/model.safetensors"))
    one_error(run("encoder", "encode", enc, made / "events.parquet", "--out", tmp_path / "z.parquet"),
              "outside the directory")
    one_error(run("encoder", "inspect", enc), "outside the directory")

    def escape(m):
        m["models"][0]["file"] = "../elsewhere/model.ubj"
    shutil.copy(made / "clf" / "model.ubj", tmp_path / "elsewhere" / "model.ubj")
    clf = edited(made / "clf", tmp_path / "clf", escape)
    one_error(run("classifier", "predict", clf, made / "z.parquet", "--out", tmp_path / "p.parquet"),
              "'../elsewhere/model.ubj', outside the directory")


@pytest.mark.parametrize("line, said", [("latent_dim = 2.5", "config 'latent_dim' must be a whole number, got 2.5"),
                                        ('epochs = "ten"', "config 'epochs' must be a whole number, got 'ten'"),
                                        ("bidirectional = 1", "config 'bidirectional' must be true or false")])
def test_a_config_value_of_the_wrong_type_names_the_file_and_the_key(made, tmp_path, line, said):
    (tmp_path / "c.toml").write_text(f"[encoder]\n{line}\n")
    one_error(run("encoder", "train", made / "events.parquet", "--id", "account", "--time", "ts",
                  "--config", tmp_path / "c.toml", "--out", tmp_path / "e"), "c.toml", said)


def test_latents_without_rows_or_labels_are_refused_by_name(made, tmp_path):
    z = pd.read_parquet(made / "z.parquet")
    z.iloc[:0].to_parquet(tmp_path / "empty.parquet")
    one_error(run("classifier", "train", tmp_path / "empty.parquet", "--label", "label", "--out", tmp_path / "c1"),
              "empty.parquet")
    z.assign(label=np.nan).to_parquet(tmp_path / "unlabelled.parquet")
    one_error(run("classifier", "train", tmp_path / "unlabelled.parquet", "--label", "label", "--drop-unlabeled",
                  "--out", tmp_path / "c2"), "label", "unlabelled.parquet")


def test_a_key_named_like_a_code_column_is_refused(made, tmp_path):
    pd.read_parquet(made / "events.parquet").rename(columns={"account": "z_0"}).to_parquet(tmp_path / "e.parquet")
    one_error(run("encoder", "train", tmp_path / "e.parquet", "--id", "z_0", "--time", "ts", "--out", tmp_path / "e"),
              "--id column 'z_0'", "named like a code column")


def test_latents_are_not_written_into_the_input_directory_nor_read_back_as_events(made, tmp_path):
    events = tmp_path / "events"
    events.mkdir()
    shutil.copy(made / "events.parquet", events / "part-0.parquet")
    one_error(run("encoder", "encode", made / "enc", events, "--out", events / "z.parquet"),
              "is inside the input directory")
    assert not (events / "z.parquet").exists()
    shutil.copy(made / "z.parquet", events / "z.parquet")  # written there by some other tool
    one_error(run("encoder", "encode", made / "enc", events, "--out", tmp_path / "z.parquet"),
              "z.parquet' of the directory", "lacks column")
