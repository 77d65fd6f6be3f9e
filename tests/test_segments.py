"""Segment maxima: where in a sequence each step-code channel peaks, beside the whole-sequence max."""
import numpy as np
import pytest
import torch

from encoder import EncoderConfig, SequenceEncoder
from encoder.errors import InputError
from encoder.model import segment_max


def _numpy_segments(c: np.ndarray, S: int) -> np.ndarray:
    L = len(c)
    part = np.arange(L) * S // L  # step t is in part floor(t S / L)
    return np.concatenate([c[part == j].max(0) if (part == j).any() else c[min(-(-j * L // S), L - 1)]
                           for j in range(S)])  # (S K,)


@pytest.mark.parametrize("seed", [0, 1])
def test_segment_max_matches_numpy_and_never_reads_padding(seed):
    gen = torch.Generator().manual_seed(seed)
    codes = torch.randn(5, 11, 3, generator=gen)
    lengths = torch.tensor([11, 8, 4, 2, 1])  # the last two are shorter than the 4 parts
    got = segment_max(codes, lengths, 4)
    assert got.shape == (5, 4 * 3)
    garbage = codes.clone()
    for b, n in enumerate(lengths.tolist()):
        garbage[b, n:] = 1e6
        np.testing.assert_allclose(got[b].numpy(), _numpy_segments(codes[b, :n].numpy(), 4), atol=1e-6)
    torch.testing.assert_close(segment_max(garbage, lengths, 4), got)
    # the parts cover the sequence: their maxima's maximum is the whole max
    whole = got.view(5, 4, 3).amax(1)
    for b, n in enumerate(lengths.tolist()):
        np.testing.assert_allclose(whole[b].numpy(), codes[b, :n].amax(0).numpy())


def test_segments_tell_where_a_shape_occurs_where_the_whole_max_cannot():
    codes = torch.zeros(2, 8, 1)
    codes[0, 1, 0] = 5.0  # a peak early
    codes[1, 6, 0] = 5.0  # the same peak late
    lengths = torch.tensor([8, 8])
    assert codes[0].amax(0) == codes[1].amax(0)
    got = segment_max(codes, lengths, 4)  # (2, 4): parts of 2 steps
    assert got[0].tolist() == [5.0, 0.0, 0.0, 0.0] and got[1].tolist() == [0.0, 0.0, 0.0, 5.0]


def test_the_entity_code_carries_named_segments_and_stays_independent_of_its_batch(events, small_config, tmp_path):
    cfg = small_config.replace(segments=3)
    enc = SequenceEncoder("account", "ts", "label", cfg).fit(events)
    mc = enc.model_config_
    K = mc.pooled_dim
    layout = enc.code_layout()
    assert mc.segments == 3 and mc.segment_dim == 3 * K
    assert list(layout["segments"]) == [f"z_{k}" for k in range(K, 4 * K)]
    assert list(layout["segments"].values())[:2] == ["segment 1/3:z_0", "segment 1/3:z_1"]
    assert min(int(k[2:]) for k in layout["summary"]) == 4 * K  # the statistics follow
    z = enc.transform(events)
    zcols = [c for c in z.columns if c.startswith("z_")]
    assert len(zcols) == mc.code_dim
    whole = z[layout["pooled"]].to_numpy()
    parts = z[list(layout["segments"])].to_numpy().reshape(len(z), 3, K)
    np.testing.assert_allclose(parts.max(1), whole, atol=1e-5)  # the parts' maxima make the whole max
    one = events[events["account"] == events["account"].iloc[0]]  # coded alone: no padding from others
    alone = enc.transform(one)
    np.testing.assert_allclose(alone[zcols].to_numpy()[0], z.set_index("account").loc[one["account"].iloc[0], zcols]
                               .to_numpy(dtype=np.float32), atol=1e-5)
    loaded = SequenceEncoder.load(enc.save(tmp_path / "enc"))
    np.testing.assert_allclose(loaded.transform(events)[zcols].to_numpy(), z[zcols].to_numpy(), atol=1e-6)


def test_segments_refuse_a_causal_encoder_and_the_event_unit_has_none():
    with pytest.raises(InputError, match="segments"):
        EncoderConfig(unit="event", segments=4).resolved(np.array([5, 8]))
    assert EncoderConfig(unit="event", segments=4, causal=False).resolved(np.array([5, 8])).segments == 4
    assert EncoderConfig(unit="event").resolved(np.array([5, 8])).segments == 0
    with pytest.raises(InputError, match="segments"):
        EncoderConfig(segments=-1)
