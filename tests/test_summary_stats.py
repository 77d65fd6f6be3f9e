"""The entity code's summary statistics: what they compute, where they sit in the code, when they are off."""
import numpy as np
import pytest
import torch

from encoder import EncoderConfig, SequenceEncoder
from encoder.io.errors import InputError
from encoder.nn.statistics import SUMMARY_STATS, summary_statistics


def _numpy_stats(v: np.ndarray) -> np.ndarray:
    steps = np.abs(np.diff(v, axis=0)).mean(0) if len(v) > 1 else np.zeros(v.shape[1])
    return np.stack([v.mean(0), v.std(0), v.min(0), v.max(0), v[0], v[-1], *np.quantile(v, [0.25, 0.5, 0.75], axis=0),
                     steps])  # (10, F)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_statistics_match_numpy_over_valid_events_and_never_read_padding(seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(4, 9, 3, generator=gen)
    lengths = torch.tensor([9, 5, 2, 1])
    got = summary_statistics(x, lengths).view(4, len(SUMMARY_STATS), 3)  # statistic-major
    garbage = x.clone()
    for b, n in enumerate(lengths.tolist()):
        garbage[b, n:] = 1e6  # padding may hold anything
        np.testing.assert_allclose(got[b].numpy(), _numpy_stats(x[b, :n].numpy()), atol=1e-5)
    torch.testing.assert_close(summary_statistics(garbage, lengths), summary_statistics(x, lengths))


def test_the_entity_code_ends_with_named_statistics_the_event_code_has_none(events, small_config):
    enc = SequenceEncoder("account", "ts", "label", small_config).fit(events)
    layout = enc.code_layout()
    names = list(layout["summary"].values())
    channels = enc.preprocessor_.numeric_channels
    assert names == [f"{s}:{c}" for s in SUMMARY_STATS for c in channels]
    z = enc.transform(events)
    col = {name: key for key, name in layout["summary"].items()}
    for c in channels:  # the order statistics of every sequence are ordered
        chain = [z[col[f"{s}:{c}"]].to_numpy() for s in ("min", "q25", "median", "q75", "max")]
        assert all((a <= b + 1e-6).all() for a, b in zip(chain, chain[1:]))
        assert (z[col[f"std:{c}"]] >= 0).all()
    assert not np.allclose(z[col[f"mean:{channels[0]}"]], z[col[f"mean:{channels[0]}"]].iloc[0])  # entities differ
    event = SequenceEncoder("account", "ts", "label", small_config.replace(unit="event")).fit(events)
    assert event.config_.blocks.summary_stats is False and event.code_layout()["summary"] == {}
    off = SequenceEncoder("account", "ts", "label", small_config.replace(summary_stats=False)).fit(events)
    assert off.model_config_.code_dim == enc.model_config_.code_dim - len(names) \
        == off.model_config_.pooled_dim + off.model_config_.segment_dim + off.model_config_.kernel_dim


def test_summary_statistics_refuse_a_causal_encoder():
    with pytest.raises(InputError, match="summary_stats"):
        EncoderConfig.of(unit="event", summary_stats=True).resolved(np.array([5, 8]))
    assert EncoderConfig.of(unit="event", summary_stats=True, causal=False).resolved(np.array([5, 8])).blocks.summary_stats
