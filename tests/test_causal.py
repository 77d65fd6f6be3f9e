"""The causal encoder: one pass per entity gives every event's code from that event and earlier ones."""
import numpy as np
import pytest

from encoder import EncoderConfig, SequenceEncoder
from encoder.io.atomic import flat_columns
from encoder.io.errors import InputError


@pytest.fixture
def causal(events, small_config):
    cfg = small_config.replace(unit="event", causal=True, max_len=64)
    return SequenceEncoder("account", "ts", "label", cfg).fit(events)


def windowed(enc, events):
    """The same encoder's codes through the windowed path: every event re-reads its window."""
    data, arrays = enc.prepare(events)
    return flat_columns(next(iter(enc._iter_columns(data, arrays, "event", 10 ** 6, True))))


def test_causal_resolves_forward_only(causal):
    assert causal.config_.network.bidirectional is False and causal.model_config_.causal
    assert causal.model_.encoder.lstm.backward_layers is None


def test_one_pass_equals_windowed_codes_when_the_window_holds_the_history(causal, events):
    z = causal.transform(events)  # one pass per entity
    w = windowed(causal, events)
    zcols = [c for c in z.columns if c.startswith("z_")]
    assert len(z) == len(events)
    np.testing.assert_allclose(z[zcols].to_numpy(), np.stack([w[c] for c in zcols], 1), atol=1e-5)


def test_one_pass_reads_the_whole_history_past_max_len(events, small_config):
    enc = SequenceEncoder("account", "ts", "label", small_config.replace(unit="event", causal=True, max_len=3)).fit(events)
    z, w = enc.transform(events), windowed(enc, events)
    zcols = [c for c in z.columns if c.startswith("z_")]
    rank = events.groupby("account")["ts"].rank(method="first").to_numpy()
    diff = np.abs(z[zcols].to_numpy() - np.stack([w[c] for c in zcols], 1)).max(1)
    assert diff[rank <= 3].max() < 1e-5 and diff[rank > 3].max() > 1e-4  # windows differ once history is longer


def test_a_later_event_never_changes_an_earlier_code(causal, events):
    later = events.copy()
    last = later.groupby("account")["ts"].transform("max") == later["ts"]
    later.loc[last, "amount"] = 1e4
    zcols = [f"z_{k}" for k in range(causal.model_config_.code_dim)]
    a, b = causal.transform(events)[zcols].to_numpy(), causal.transform(later)[zcols].to_numpy()
    np.testing.assert_allclose(a[~last.to_numpy()], b[~last.to_numpy()], atol=1e-6)
    assert np.abs(a[last.to_numpy()] - b[last.to_numpy()]).max() > 1e-4


def test_causal_refuses_attention_and_patches():
    with pytest.raises(InputError, match="pooling"):
        EncoderConfig.of(unit="event", causal=True, pooling=("attention",)).resolved([5, 6])
    with pytest.raises(InputError, match="patch"):
        EncoderConfig.of(causal=True, patch=2).resolved([5, 6])


def test_an_input_in_id_and_time_order_is_coded_a_stretch_at_a_time_with_the_same_codes(causal, events, monkeypatch):
    """Events already in (id, time) order stream through ``running_code_chunks`` (memory bounded by a
    stretch of entities); any other order holds every code until its row is written. Same codes."""
    import encoder.estimator as estimator
    held = []
    original = estimator.SequenceEncoder.running_codes
    monkeypatch.setattr(estimator.SequenceEncoder, "running_codes",
                        lambda self, *a, **k: held.append(1) or original(self, *a, **k))
    monkeypatch.setattr(estimator, "RUNNING_CHUNK_BYTES", 0)  # stretches of about batch_size * max_len events
    ordered = events.sort_values(["account", "ts"]).reset_index(drop=True)
    stretches = list(causal.running_code_chunks(causal.prepare(ordered)[1], batch_size=1))
    assert len(stretches) > 1 and [f for f, _ in stretches] == sorted(f for f, _ in stretches)
    streamed = causal.transform(ordered, batch_size=1)
    assert held == []
    shuffled = causal.transform(events, batch_size=1)
    assert held == [1]
    zcols = [c for c in streamed.columns if c.startswith("z_")]
    assert streamed[["account", "ts"]].equals(ordered[["account", "ts"]])  # one row per event, input order
    back = shuffled.set_index(["account", "ts"]).loc[list(zip(ordered.account, ordered.ts)), zcols].to_numpy()
    np.testing.assert_allclose(streamed[zcols].to_numpy(), back, atol=1e-6)
