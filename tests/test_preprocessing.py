"""Scalers, vocabularies, missing values and within-entity engineered channels; preprocessing on a
thread of its own while an entity encode codes (``ArraysInProgress``)."""
import threading

import numpy as np
import pandas as pd
import pytest

from encoder import EncoderConfig, SequenceEncoder, prepared
from encoder.io.errors import InputError
from encoder.preprocessing import Preprocessor, within_entity_rolling_mean, within_entity_shift
from encoder.sequences import entity_end_rows


def _fit(df, **cfg):
    times = np.arange(len(df), dtype=float)
    starts = np.zeros(len(df), dtype=np.int64)
    cfg = {"min_entities": 1, "novelty": False} | cfg
    pre = Preprocessor(EncoderConfig.of(**cfg).data, ["x"], ["c"]).fit(df, times, starts)
    return pre, times, starts


def test_scaler_uses_training_statistics_and_missing_indicator():
    train = pd.DataFrame({"x": [1.0, 2.0, 3.0, np.nan, 5.0], "c": ["a", "a", "b", "b", "z"]})
    pre, times, starts = _fit(train, scaler="standard", log_transform="none")
    st = pre.numeric_["x"]
    assert np.isclose(st["center"], np.nanmean(train.x)) and st["missing_indicator"]
    new = pd.DataFrame({"x": [1000.0, np.nan], "c": ["a", "never-seen"]})
    num, cat = pre.transform(new, times[:2], starts[:2])
    assert pre.numeric_channels == ["x", "x__missing", "__time_gap"]
    assert num[1, 0] == 0.0 and num[1, 1] == 1.0 and num[0, 1] == 0.0
    assert pre.numeric_["x"] == st  # transform never refits
    # vocabulary: 0 padding, 1 unknown/rare ("z" is seen once < min_freq 2), known values from 2
    assert cat[:, 0].tolist() == [2, 1]
    assert pre.vocab_["c"] == ["a", "b"]


def test_missing_category_is_its_own_value():
    train = pd.DataFrame({"x": [1.0] * 4, "c": ["a", None, None, "a"]})
    pre, times, starts = _fit(train)
    assert "<missing>" in pre.vocab_["c"]


def test_auto_log_only_for_heavy_tails():
    heavy = pd.DataFrame({"x": np.r_[np.ones(50), 1e6], "c": ["a"] * 51})
    assert _fit(heavy)[0].numeric_["x"]["log"]
    light = pd.DataFrame({"x": np.linspace(0, 1, 51), "c": ["a"] * 51})
    assert not _fit(light)[0].numeric_["x"]["log"]


def test_engineered_channels_stay_within_entity():
    x = np.arange(6, dtype=np.float32)[:, None]
    starts = np.array([0, 0, 0, 3, 3, 3])
    assert within_entity_shift(x, starts, 1)[:, 0].tolist() == [0, 0, 1, 0, 3, 4]
    assert within_entity_shift(x, starts, 2)[:, 0].tolist() == [0, 0, 0, 0, 0, 3]
    assert within_entity_shift(x, starts, 9)[:, 0].tolist() == [0] * 6
    assert within_entity_rolling_mean(x, starts, 2)[:, 0].tolist() == [0, 0.5, 1.5, 3, 3.5, 4.5]


@pytest.mark.parametrize("option, value", [("lags", (0,)), ("rolling", (3, -1)), ("lags", (1.5,))])
def test_lags_and_rolling_windows_must_be_positive_steps(option, value):
    with pytest.raises(InputError, match=f"config '{option}' holds"):
        EncoderConfig.of(**{option: value})


def test_values_of_a_single_entity_are_identities_and_novelty_is_point_in_time():
    df = pd.DataFrame({"x": np.arange(6.0), "c": ["shared", "dev1", "shared", "shared", "dev2", "dev2"]})
    times, starts = np.arange(6.0), np.array([0, 0, 0, 3, 3, 3])
    pre = Preprocessor(EncoderConfig.of(min_freq=1).data, ["x"], ["c"]).fit(df, times, starts)
    assert pre.vocab_["c"] == ["shared"]  # dev1 and dev2 each belong to one entity
    num, cat = pre.transform(df, times, starts)
    assert cat[:, 0].tolist() == [2, 1, 2, 2, 1, 1]
    new = num[:, pre.numeric_channels.index("c__new")]
    assert new.tolist() == [0, 1, 0, 0, 1, 0]  # first rows are never "new"; dev2 repeats


def test_regular_sampling_gives_a_bounded_gap_channel():
    df = pd.DataFrame({"x": np.arange(20.0), "c": ["a"] * 20})
    times, starts = np.arange(20.0), np.repeat([0, 10], 10)
    pre = Preprocessor(EncoderConfig.of(min_entities=1).data, ["x"], ["c"]).fit(df, times, starts)
    num, _ = pre.transform(df, times, starts)
    gap = num[:, pre.numeric_channels.index("__time_gap")]
    assert np.abs(gap).max() <= 1.0 and gap[0] == gap[10] == -1.0


@pytest.mark.parametrize("stretch", [1, 7, 10 ** 6])  # one entity, a few, all at once
def test_arrays_in_progress_equal_the_whole_tables_and_so_do_the_codes(events, small_config, monkeypatch, stretch):
    enc = SequenceEncoder("account", "ts", "label", small_config).fit(events)
    _, whole = enc.prepare(events)
    monkeypatch.setattr(prepared, "STRETCH_ROWS", stretch)
    data, progress = enc.prepare(events, background=True)
    ends = entity_end_rows(whole.starts)
    for first, stop in [(0, len(whole)), *zip(np.r_[0, ends[:-1] + 1], ends + 1)]:  # everything, then each entity
        got, want = progress.rows(first, stop), whole.rows(first, stop)
        for name in ("num", "cat", "starts"):
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name))
    codes = pd.concat(enc.iter_prepared(data, progress, "entity", 5), ignore_index=True)
    progress.close()
    pd.testing.assert_frame_equal(codes, pd.concat(enc.iter_prepared(*enc.prepare(events), "entity", 5),
                                                   ignore_index=True))


def test_a_preprocessing_error_reaches_the_encode_and_leaves_no_output(events, small_config, monkeypatch, tmp_path):
    enc = SequenceEncoder("account", "ts", "label", small_config).fit(events)

    def broken(frame, times, starts):
        raise RuntimeError("preprocessing broke")
    monkeypatch.setattr(enc.preprocessor_, "transform", broken)
    with pytest.raises(RuntimeError, match="preprocessing broke"):
        enc.encode_to_parquet(events, tmp_path / "z.parquet")
    assert list(tmp_path.iterdir()) == []


def test_closed_arrays_in_progress_stop_after_their_stretch(events, small_config, monkeypatch):
    enc = SequenceEncoder("account", "ts", "label", small_config).fit(events)
    monkeypatch.setattr(prepared, "STRETCH_ROWS", 1)  # one entity a stretch
    gate, transform = threading.Event(), enc.preprocessor_.transform

    def held(frame, times, starts):  # the first stretch goes through, the next waits for the gate
        if frame.index[0] > 0:
            gate.wait()
        return transform(frame, times, starts)
    monkeypatch.setattr(enc.preprocessor_, "transform", held)
    _, progress = enc.prepare(events, background=True)
    first_entity = int(entity_end_rows(progress.starts)[0]) + 1
    assert len(progress.rows(0, first_entity)) == first_entity
    closing = threading.Thread(target=progress.close)
    closing.start()
    gate.set()  # the stretch under way finishes; no later one starts
    closing.join(timeout=10)
    assert not closing.is_alive()
    with pytest.raises(RuntimeError, match="closed first"):
        progress.rows(0, len(progress))
