"""The untrained twin (the control) and the code's named blocks: same untrained features, only the
trained weights differ; blocks chosen at encode time by name."""
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from encoder import EncoderConfig, SequenceEncoder
from encoder.blocks import BLOCKS, TRAINED, block_columns, parse_blocks
from encoder.io.errors import InputError
from tests.cli_helpers import run

CFG = EncoderConfig.of(hidden_size=8, latent_dim=4, epochs=3, batch_size=4, min_batches_per_epoch=2, patience=50,
                       seed=3, kernel_features=84, segments=2)


@pytest.fixture(scope="module")
def trained():
    from tests.conftest import make_events
    df = make_events(16)
    return df, SequenceEncoder("account", "ts", "label", CFG).fit(df)


def columns(enc, trained: bool) -> list[str]:
    blocks = enc.code_blocks()
    return block_columns(blocks, [b.name for b in blocks if b.trained == trained])


def test_the_twins_untrained_blocks_equal_the_trained_encoders_column_for_column(trained):
    df, enc = trained
    twin = enc.untrained_twin()
    z, u = enc.transform(df), twin.transform(df)
    assert list(z.columns) == list(u.columns)
    untrained = columns(enc, trained=False)
    assert len(untrained) == 84 + 50  # random kernels and summary statistics of 5 numeric channels
    assert z[untrained].std().gt(0).sum() > 40  # real features, not constants (the old control's were all zero)
    np.testing.assert_array_equal(z[untrained].to_numpy(), u[untrained].to_numpy())
    learned = columns(enc, trained=True)
    assert not np.allclose(z[learned].to_numpy(), u[learned].to_numpy())  # training changed the network
    assert twin.untrained_ and not enc.untrained_ and twin.training_["twin_of"] == enc.encoder_id


def test_the_twin_is_the_network_training_started_from_and_epochs_zero_writes_it(trained):
    df, enc = trained
    twin = enc.untrained_twin()
    zero = SequenceEncoder("account", "ts", "label", CFG.replace(epochs=0)).fit(df)
    assert zero.untrained_ and zero.training_["epochs_run"] == 0 and zero.training_["best_val_loss"] is None
    mine, theirs = twin.model_.state_dict(), zero.model_.state_dict()
    assert list(mine) == list(theirs)
    assert all(torch.equal(mine[k], theirs[k]) for k in mine)  # weights and kernel buffers alike
    trained_params = dict(enc.model_.named_parameters())
    assert any(not torch.equal(p, trained_params[k]) for k, p in twin.model_.named_parameters())


def test_blocks_are_chosen_by_name_at_encode_time(trained):
    df, enc = trained
    blocks = {b.name: b for b in enc.code_blocks()}
    assert [b.name for b in enc.code_blocks()] == list(BLOCKS)
    assert sum(b.width for b in blocks.values()) == enc.model_config_.code_dim
    assert {n for n, b in blocks.items() if b.trained} == TRAINED
    full = enc.transform(df)
    pooled = enc.transform(df, blocks="pooled")
    assert [c for c in pooled.columns if c.startswith("z_")] == list(blocks["pooled"].columns)
    np.testing.assert_array_equal(pooled[list(blocks["pooled"].columns)], full[list(blocks["pooled"].columns)])
    no_kernels = enc.transform(df, blocks="-kernels")
    kept = [c for c in full.columns if c.startswith("z_") and c not in blocks["kernels"].columns]
    assert [c for c in no_kernels.columns if c.startswith("z_")] == kept
    np.testing.assert_allclose(no_kernels[kept].to_numpy(), full[kept].to_numpy(), rtol=0, atol=1e-6)
    assert parse_blocks("learned", enc.code_blocks()) == ["pooled", "segments"]
    assert parse_blocks("untrained", enc.code_blocks()) == ["summary", "kernels"]
    for bad, said in (("pooled,nope", "block 'nope'"), ("surprise", "does not have"),
                      ("pooled,-kernels", "mixes"), ("-learned,-untrained", "leaves no block")):
        with pytest.raises(InputError, match=said):
            enc.transform(df, blocks=bad)


def test_cli_writes_the_control_two_ways_and_encodes_blocks(trained, tmp_path):
    df, _ = trained
    table = tmp_path / "events.parquet"
    df.to_parquet(table)
    cfg = tmp_path / "c.toml"
    cfg.write_text("[encoder]\nhidden_size = 8\nlatent_dim = 4\nbatch_size = 4\nkernel_features = 84\nsegments = 2\n"
                   "min_batches_per_epoch = 2\nseed = 3\n")
    common = ["--id", "account", "--time", "ts", "--label", "label", "--config", cfg]
    r = run("encoder", "train", table, *common, "--epochs", "2", "--out", tmp_path / "enc")
    assert r.exit_code == 0, r.output
    r = run("encoder", "train", table, *common, "--epochs", "0", "--out", tmp_path / "zero")
    assert r.exit_code == 0 and "untrained" in r.output, r.output
    r = run("encoder", "untrained", tmp_path / "enc", "--out", tmp_path / "twin")
    assert r.exit_code == 0 and "untrained twin" in r.output, r.output
    manifests = {n: json.loads((tmp_path / n / "manifest.json").read_text()) for n in ("enc", "zero", "twin")}
    assert [manifests[n]["untrained"] for n in ("enc", "zero", "twin")] == [False, True, True]
    assert manifests["twin"]["training"]["twin_of"] == manifests["enc"]["encoder_id"]
    assert manifests["zero"]["encoder_id"] == manifests["twin"]["encoder_id"]  # the same bytes, both ways
    widths = manifests["enc"]["code_blocks"]
    assert sum(b["width"] for b in widths.values()) == manifests["enc"]["code_width"]
    assert not widths["kernels"]["trained"] and widths["pooled"]["trained"]
    r = run("encoder", "inspect", tmp_path / "twin")
    assert r.exit_code == 0 and "untrained" in r.output and "kernels 84 (untrained)" in r.output, r.output
    for name in ("enc", "twin"):
        r = run("encoder", "encode", tmp_path / name, table, "--blocks", "untrained", "--out", tmp_path / f"{name}.parquet")
        assert r.exit_code == 0, r.output
    a, b = (pq.read_table(tmp_path / f"{n}.parquet") for n in ("enc", "twin"))
    assert a.column_names == b.column_names and a.equals(b)
    assert json.loads(b.schema.metadata[b"blocks"]) == ["summary", "kernels"]
    assert json.loads(b.schema.metadata[b"untrained"]) is True
    r = run("encoder", "encode", tmp_path / "enc", table, "--blocks", "lstm", "--out", tmp_path / "bad.parquet")
    assert r.exit_code == 1 and r.output.startswith("error: --blocks names block 'lstm'"), r.output
    assert not (tmp_path / "bad.parquet").exists()
