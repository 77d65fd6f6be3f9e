"""SequenceEncoder: it learns, masks padding and the future, is deterministic, saves, loads and resumes."""
import json
import time

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from encoder import EncoderConfig, SequenceEncoder, load
from encoder.io.errors import ArtifactError, InputError, NotFitted
from encoder.nn.config import ModelConfig
from encoder.nn.model import LSTMAutoencoder
from encoder.training.loop import Callback
from tests.conftest import make_events


def _zcols(df):
    return [c for c in df.columns if c.startswith("z_")]


def test_it_learns(events):
    cfg = EncoderConfig.of(hidden_size=16, latent_dim=8, epochs=40, batch_size=4, patience=100, seed=0,
                           time_gap=False)
    enc = SequenceEncoder("account", "ts", "label", cfg, drop=["amount", "channel"]).fit(make_events(30))
    val = enc.history_["val_loss"]
    assert val.min() < 0.5 * val.iloc[0]


def test_transform_layout_entity_and_event(events, small_config):
    enc = SequenceEncoder("account", "ts", "label", small_config).fit(events)
    z = enc.transform(events)
    n_stats = 10 * len(enc.preprocessor_.numeric_channels)  # pooled code, segment maxima if kept, statistics
    n_segments = 4 * enc.config_.blocks.segments
    n_kernels = 2520  # then the random-kernel features, the entity default
    assert enc.config_.blocks.segments == (4 if enc.training_["segments"]["kept"] else 0)
    assert list(z.columns[:2]) == ["account", "label"] and len(_zcols(z)) == 4 + n_segments + n_stats + n_kernels
    assert z["account"].tolist() == sorted(events["account"].unique())
    last = events.sort_values(["account", "ts"]).groupby("account").label.last()
    assert z.set_index("account")["label"].equals(last)
    assert all(z[c].dtype == np.float32 for c in _zcols(z))
    ze = enc.transform(events, unit="event")
    assert ze["ts"].tolist() == events["ts"].tolist()  # input order


def test_padding_and_later_events_change_no_code(small_config):
    torch.manual_seed(0)
    model = LSTMAutoencoder(ModelConfig(n_numeric=2, cardinalities=(5,), embedding_dims=(3,), hidden_size=6,
                                        latent_dim=4, pooling=("last", "mean", "max", "attention"))).eval()
    num, cat = torch.randn(2, 6, 2), torch.randint(1, 5, (2, 6, 1))
    lengths = torch.tensor([6, 3])
    z = model.encoder(num, cat, lengths)
    num2, cat2 = num.clone(), cat.clone()
    num2[1, 3:] = 99.0
    cat2[1, 3:] = 4
    assert torch.allclose(model.encoder(num2, cat2, lengths), z, atol=0, rtol=0)


def test_point_in_time_codes_ignore_later_events(events, small_config):
    enc = SequenceEncoder("account", "ts", "label", small_config.replace(unit="event")).fit(events)
    before = enc.transform(events)
    changed = events.copy()
    busiest = changed.account.value_counts().index[0]
    cut = changed[changed.account == busiest].ts.sort_values().iloc[2]
    later = (changed.account == busiest) & (changed.ts > cut)
    changed.loc[later, "signal"] += 50.0
    changed.loc[later, "channel"] = "atm"
    after = enc.transform(changed)
    keep = ~later.to_numpy()
    np.testing.assert_array_equal(after.loc[keep, _zcols(after)].to_numpy(), before.loc[keep, _zcols(before)].to_numpy())
    assert not np.allclose(after.loc[~keep, _zcols(after)].to_numpy(), before.loc[~keep, _zcols(before)].to_numpy())


def test_denoising_is_off_at_encode_time(events, small_config, monkeypatch):
    enc = SequenceEncoder("account", "ts", "label", small_config).fit(events)
    import encoder.training.loop as training

    def boom(*a, **k):
        raise AssertionError("corruption called while encoding")
    monkeypatch.setattr(training, "corrupt", boom)
    a, b = enc.transform(events), enc.transform(events)
    pd.testing.assert_frame_equal(a, b)


def test_codes_do_not_depend_on_batch_size(events, small_config):
    enc = SequenceEncoder("account", "ts", "label", small_config.replace(unit="event")).fit(events)
    a, b = enc.transform(events, batch_size=1), enc.transform(events, batch_size=1000)
    np.testing.assert_allclose(a[_zcols(a)].to_numpy(), b[_zcols(b)].to_numpy(), atol=1e-5)


@pytest.mark.parametrize("unit", ["entity", "event"])
def test_codes_do_not_depend_on_how_sequences_are_grouped_by_length(events, small_config, monkeypatch, unit):
    import encoder.estimator as estimator
    enc = SequenceEncoder("account", "ts", "label", small_config).fit(events)  # entity-trained: windowed events
    whole = enc.transform(events, unit=unit)
    monkeypatch.setattr(estimator, "LENGTH_GROUP", 3)  # groups of 3 similar lengths, each cut to its longest
    grouped = enc.transform(events, unit=unit)
    assert grouped.drop(columns=_zcols(grouped)).equals(whole.drop(columns=_zcols(whole)))  # same rows, same order
    np.testing.assert_allclose(grouped[_zcols(grouped)].to_numpy(), whole[_zcols(whole)].to_numpy(), atol=1e-5)


def test_by_length_cuts_each_group_to_its_longest_and_keeps_the_input_order():
    from encoder.sequences import by_length
    lengths = torch.tensor([6, 1, 3, 2, 5, 1, 4])
    num = torch.arange(7.0)[:, None, None].expand(7, 6, 1).contiguous()  # row i holds i at every step
    cat = torch.zeros(7, 6, 1, dtype=torch.long)
    seen = []

    def fn(num, cat, lengths):
        seen.append((num.shape[1], lengths.tolist()))
        return torch.stack([num[:, 0, 0], lengths.float()], dim=1)  # (b, 2): the row and its length

    out = by_length(fn, num, cat, lengths, group=3)
    assert out[:, 0].tolist() == list(range(7)) and out[:, 1].tolist() == lengths.float().tolist()
    assert seen == [(2, [1, 1, 2]), (5, [3, 4, 5]), (6, [6])]  # shortest first, each padded to its own longest


def test_codes_do_not_depend_on_the_thread_count_and_batches_keep_their_order(events, small_config):
    """Batches are coded on as many threads as torch has, one core each (``encoder.threads``)."""
    enc = SequenceEncoder("account", "ts", "label", small_config).fit(events)  # with kernels, statistics
    before = torch.get_num_threads()
    try:
        codes = {}
        for n in (1, 3):
            torch.set_num_threads(n)
            codes[n] = enc.transform(events, batch_size=4)  # many batches
            assert torch.get_num_threads() == n  # the caller's count, as it was
    finally:
        torch.set_num_threads(before)
    pd.testing.assert_frame_equal(codes[1], codes[3])  # bit for bit, rows in the same order
    assert codes[3].account.tolist() == enc.transform(events, batch_size=1000).account.tolist()


def test_one_thread_each_keeps_the_order_and_raises_at_the_failing_item():
    from encoder.threads import one_thread_each
    counts = []

    def fn(i):
        counts.append(torch.get_num_threads())
        time.sleep(0.01 * (3 - i % 3))  # later items finish first
        if i == 7:
            raise ValueError("item 7")
        return i

    before = torch.get_num_threads()
    results = one_thread_each(fn, range(20), workers=3)
    assert [next(results) for _ in range(7)] == list(range(7))
    with pytest.raises(ValueError, match="item 7"):
        next(results)
    assert set(counts) == {1} and len(counts) < 20  # one torch thread each; the queue behind 7 never ran
    assert torch.get_num_threads() == before


def test_parquet_csv_and_dataframe_inputs_give_the_same_codes_and_file(events, small_config, tmp_path):
    """Parquet string columns are read as categoricals (codes, not strings): same vocabulary lookups,
    novelty flags and codes as the in-memory table, also with missing values and an integer column
    declared categorical."""
    events = events.assign(mcc=np.where(events.index % 3 == 0, 5411, 4829), channel=events.channel.where(
        events.index % 7 != 0, None))
    enc = SequenceEncoder("account", "ts", "label", small_config, categorical=["mcc"]).fit(events)
    events.to_parquet(tmp_path / "e.parquet")
    events.to_csv(tmp_path / "e.csv", index=False)
    fitted_on_file = SequenceEncoder("account", "ts", "label", small_config, categorical=["mcc"]).fit(tmp_path / "e.parquet")
    for k, v in enc.model_.state_dict().items():
        assert torch.equal(v, fitted_on_file.model_.state_dict()[k]), k
    for unit in ("entity", "event"):
        expected = enc.transform(events, unit=unit)
        for src in ("e.parquet", "e.csv"):
            pd.testing.assert_frame_equal(enc.transform(tmp_path / src, unit=unit), expected)
        enc.encode_to_parquet(tmp_path / "e.parquet", tmp_path / f"z_{unit}.parquet", unit=unit)
        written = pd.read_parquet(tmp_path / f"z_{unit}.parquet")
        pd.testing.assert_frame_equal(written, expected)
    group = pq.ParquetFile(tmp_path / "z_entity.parquet").metadata.row_group(0)
    column = {group.column(i).path_in_schema: group.column(i) for i in range(group.num_columns)}
    layout = {b.name: b.columns for b in enc.code_blocks()}
    assert layout["kernels"] and all(any("DICT" in e for e in column[c].encodings) for c in layout["kernels"])
    assert not any("DICT" in e for e in column[layout["pooled"][0]].encodings)  # learned values hardly repeat


@pytest.mark.parametrize("tz", [None, "Europe/Paris"])
def test_event_codes_keep_the_time_column_type_in_the_file(events, small_config, tmp_path, tz):
    """Time keys written to Parquet keep their type (resolution and zone), so the codes join back
    onto the events; categorical ids come out as strings, as from ``transform``."""
    events = events.assign(ts=pd.Timestamp("2024-01-01", tz=tz) + pd.to_timedelta(events.ts, unit="h"),
                           account=events.account.astype("category"))
    events.to_parquet(tmp_path / "e.parquet")
    enc = SequenceEncoder("account", "ts", "label", small_config.replace(unit="event")).fit(events)
    enc.encode_to_parquet(tmp_path / "e.parquet", tmp_path / "z.parquet")
    written = pd.read_parquet(tmp_path / "z.parquet")
    assert written["ts"].dtype == events["ts"].dtype
    pd.testing.assert_frame_equal(written, enc.transform(tmp_path / "e.parquet"))
    joined = written.merge(events.astype({"account": str}), on=["account", "ts"], how="left", validate="one_to_one")
    assert joined["signal"].notna().all()


def test_same_seed_same_weights(events, small_config):
    a = SequenceEncoder("account", "ts", "label", small_config).fit(events)
    b = SequenceEncoder("account", "ts", "label", small_config).fit(events)
    for (k, va), vb in zip(a.model_.state_dict().items(), b.model_.state_dict().values()):
        assert torch.equal(va, vb), k


def test_save_load_round_trip(events, small_config, tmp_path):
    enc = SequenceEncoder("account", "ts", "label", small_config).fit(events)
    enc.save(tmp_path / "enc")
    assert sorted(p.name for p in (tmp_path / "enc").iterdir()) == ["history.csv", "loss.png", "manifest.json",
                                                                   "model.safetensors"]
    again = load(tmp_path / "enc")
    pd.testing.assert_frame_equal(enc.transform(events), again.transform(events))
    assert again.encoder_id == enc.encoder_id == json.loads((tmp_path / "enc/manifest.json").read_text())["encoder_id"]
    with pytest.raises(InputError, match="exists already; pass --overwrite"):
        enc.save(tmp_path / "enc")


def test_encoders_saved_with_the_removed_merge_option_still_load(events, small_config, tmp_path):
    enc = SequenceEncoder("account", "ts", "label", small_config).fit(events)
    enc.save(tmp_path / "e")
    path = tmp_path / "e" / "manifest.json"
    m = json.loads(path.read_text())
    for part in ("config", "model_config"):  # as encoders written before the option went away
        m[part] |= {"merge": "concat", "branch_size": 32}
    path.write_text(json.dumps(m))
    np.testing.assert_array_equal(load(tmp_path / "e").transform(events).filter(like="z_"),
                                  enc.transform(events).filter(like="z_"))
    m["model_config"]["merge"] = "branches"
    path.write_text(json.dumps(m))
    with pytest.raises(ArtifactError, match="option 'merge' = 'branches' is no longer supported"):
        load(tmp_path / "e")


def test_a_format_2_encoder_with_its_config_in_one_table_still_loads(events, small_config, tmp_path):
    """Encoders written before the config came in parts: options by name at the top of ``config``."""
    enc = SequenceEncoder("account", "ts", "label", small_config).fit(events)
    enc.save(tmp_path / "e")
    path = tmp_path / "e" / "manifest.json"
    m = json.loads(path.read_text())
    assert set(m["config"]) == {"data", "network", "blocks", "noise", "training"} and "latent_dim" not in m
    flat = {name: value for part in m["config"].values() for name, value in part.items()}
    path.write_text(json.dumps(m | {"format_version": 2, "config": flat, "latent_dim": m["code_width"]}))
    again = load(tmp_path / "e")
    assert again.config_ == enc.config_
    np.testing.assert_array_equal(again.transform(events).filter(like="z_"), enc.transform(events).filter(like="z_"))


def test_tampered_weights_and_newer_or_older_format_are_refused(events, small_config, tmp_path):
    enc = SequenceEncoder("account", "ts", "label", small_config).fit(events)
    enc.save(tmp_path / "enc")
    manifest = json.loads((tmp_path / "enc/manifest.json").read_text())
    manifest["format_version"] = 99
    (tmp_path / "enc/manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="has manifest format version 99, newer than this seqae reads"):
        load(tmp_path / "enc")
    manifest["format_version"] = 1
    (tmp_path / "enc/manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="has manifest format version 1, older than this seqae reads .2.; train"):
        load(tmp_path / "enc")
    enc.save(tmp_path / "enc", overwrite=True)
    with open(tmp_path / "enc/model.safetensors", "r+b") as f:
        f.seek(-4, 2)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(ArtifactError, match="does not match its manifest .* it was changed or corrupted"):
        load(tmp_path / "enc")


class _Interrupt(Callback):
    def on_epoch_end(self, trainer, record):
        if trainer.epoch == 2:
            raise KeyboardInterrupt


def test_resume_equals_uninterrupted_run(events, small_config, tmp_path):
    cfg = small_config.replace(epochs=5, dropout=0.2, num_layers=2)
    full = SequenceEncoder("account", "ts", "label", cfg).fit(events)
    ckpt = tmp_path / "ckpt.pt"
    with pytest.raises(KeyboardInterrupt):
        SequenceEncoder("account", "ts", "label", cfg).fit(events, checkpoint=ckpt, callbacks=[_Interrupt()])
    resumed = SequenceEncoder("account", "ts", "label", cfg).fit(events, checkpoint=ckpt, resume=True)
    assert len(resumed.history_) == 5
    for va, vb in zip(full.model_.state_dict().values(), resumed.model_.state_dict().values()):
        assert torch.equal(va, vb)


def test_not_fitted_and_single_event_entities(small_config):
    with pytest.raises(NotFitted):
        SequenceEncoder("a", "t").transform(pd.DataFrame({"a": [1], "t": [1], "x": [1.0]}))
    df = pd.DataFrame({"a": [1, 2, 3, 3], "t": [1, 2, 3, 4], "x": [0.1, 0.2, 0.3, 0.4]})
    z = SequenceEncoder("a", "t", config=small_config).fit(df).transform(df)
    assert len(z) == 3 and not z[_zcols(z)].isna().any().any()


@pytest.mark.parametrize("change, message", [
    (lambda d: d.drop(columns="amount"), "feature column 'amount' seen in training is missing from '<DataFrame>'"),
    (lambda d: d.assign(amount="x"), "column 'amount' in '<DataFrame>' holds string values but was numeric in training"),
    (lambda d: d.assign(signal=np.where(d.index == 0, np.inf, d.signal)), "numeric column 'signal' in '<DataFrame>' holds infinite values"),
])
def test_bad_encode_input(events, small_config, change, message):
    enc = SequenceEncoder("account", "ts", "label", small_config).fit(events)
    with pytest.raises(InputError) as e:
        enc.transform(change(events))
    assert str(e.value) == message


def test_bad_training_input(events, small_config):
    with pytest.raises(InputError) as e:
        SequenceEncoder("account", "ts", config=small_config).fit(events.assign(amount=np.nan))
    assert str(e.value) == "numeric column 'amount' in '<DataFrame>' is entirely missing (NaN)"
    events = make_events(40)
    ids = events.assign(txn=[f"t{i}" for i in range(len(events))])
    with pytest.raises(InputError) as e:
        SequenceEncoder("account", "ts", config=small_config).fit(ids)
    assert str(e.value) == (f"categorical column 'txn' in '<DataFrame>' has {len(events)} distinct values in "
                            f"{len(events)} rows: it looks like an identifier; leave it out with --drop txn")


def test_contrastive_term_trains_and_is_recorded(events, small_config):
    a = SequenceEncoder("account", "ts", "label", small_config.replace(contrastive_weight=0.0)).fit(events)
    b = SequenceEncoder("account", "ts", "label", small_config).fit(events)
    assert not torch.equal(a.model_.encoder.project.weight, b.model_.encoder.project.weight)
    assert (a.history_["train_contrastive"] == 0).all()
    assert (b.history_["train_contrastive"] > 0).all() and np.isfinite(b.history_["train_loss"]).all()


def test_masked_lstm_equals_packed_bidirectional_lstm():
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    from encoder.nn.lstm import MaskedLSTM
    torch.manual_seed(0)
    ours = MaskedLSTM(3, 5, num_layers=2, bidirectional=True, dropout=0.0)
    ref = torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True, batch_first=True)
    for layer in range(2):
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(ours.forward_layers[layer], f"{name}_l0").data.copy_(getattr(ref, f"{name}_l{layer}"))
            getattr(ours.backward_layers[layer], f"{name}_l0").data.copy_(getattr(ref, f"{name}_l{layer}_reverse"))
    x, lengths = torch.randn(4, 7, 3), torch.tensor([7, 3, 1, 5])
    full = torch.full((4,), 7)
    full_outs, full_final = ours(x, full)  # the no-padding fast path
    full_out = ours.in_time_order(full_outs, full)
    ref_full, (h_full, _) = ref(x)
    torch.testing.assert_close(full_out, ref_full, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(full_final, torch.cat([h_full[-2], h_full[-1]], dim=-1), rtol=1e-5, atol=1e-6)
    outs, final = ours(x, lengths)
    out = ours.in_time_order(outs, lengths)
    packed, (h_n, _) = ref(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    ref_out, _ = pad_packed_sequence(packed, batch_first=True, total_length=7)
    valid = (torch.arange(7)[None, :] < lengths[:, None])[..., None]
    torch.testing.assert_close(out * valid, ref_out, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(final, torch.cat([h_n[-2], h_n[-1]], dim=-1), rtol=1e-5, atol=1e-6)
