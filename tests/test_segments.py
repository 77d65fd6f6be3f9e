"""Segment maxima: where in a sequence each step-code channel peaks, beside the whole-sequence max."""
import numpy as np
import pytest
import torch

from encoder import EncoderConfig, SequenceEncoder
from encoder.io.errors import InputError
from encoder.nn.statistics import position_share, segment_max


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
        EncoderConfig.of(unit="event", segments=4).resolved(np.array([5, 8]))
    assert EncoderConfig.of(unit="event", segments=4, causal=False).resolved(np.array([5, 8])).blocks.segments == 4
    assert EncoderConfig.of(unit="event").resolved(np.array([5, 8])).blocks.segments == 0
    with pytest.raises(InputError, match="segments"):
        EncoderConfig.of(segments=-1)


def test_position_share_is_high_where_shapes_keep_their_part_and_low_where_they_move():
    gen = np.random.default_rng(0)
    n, S, K = 400, 4, 3
    base = gen.normal(size=(n, S, K))
    placed = base + np.array([3.0, 0.0, -3.0, 0.0])[None, :, None]  # each part its own level: (n, S, K)
    moving = np.stack([row[gen.permutation(S)] for row in placed])  # the same values, parts shuffled
    share = position_share(torch.tensor(placed.reshape(n, S * K)), S)
    assert share > 0.7  # between-part variance 4.5 of a total 5.5
    assert position_share(torch.tensor(moving.reshape(n, S * K)), S) < 0.05
    assert position_share(torch.ones(5, S * K), S) == 0.0  # nothing varies: no evidence of position


def test_provisional_segments_are_kept_or_dropped_by_the_measured_share(events, small_config, tmp_path):
    kept = SequenceEncoder("account", "ts", "label", small_config.replace(segments_min_share=0.0)).fit(events)
    dropped = SequenceEncoder("account", "ts", "label", small_config.replace(segments_min_share=1.0)).fit(events)
    rule = kept.training_["segments"]
    assert rule["kept"] and rule["min_share"] == 0.0 and 0.0 < rule["share"] < 1.0
    assert dropped.training_["segments"] == {"share": rule["share"], "min_share": 1.0, "kept": False}
    assert kept.config_.blocks.segments == kept.model_config_.segments == 4
    assert dropped.config_.blocks.segments == dropped.model_config_.segments == 0
    assert dropped.code_layout()["segments"] == {}
    K = kept.model_config_.pooled_dim
    assert kept.model_config_.code_dim == dropped.model_config_.code_dim + 4 * K
    # the same trained weights: the narrower code is the wider one without the segment columns
    zk, zd = kept.transform(events), dropped.transform(events)
    seg = set(kept.code_layout()["segments"])
    wide = zk[[c for c in zk.columns if c.startswith("z_") and c not in seg]].to_numpy()
    np.testing.assert_allclose(zd[[c for c in zd.columns if c.startswith("z_")]].to_numpy(), wide, atol=1e-6)
    loaded = SequenceEncoder.load(dropped.save(tmp_path / "enc"))  # the manifest's resolved 0 is explicit
    assert loaded.config_.blocks.segments == 0 and loaded.training_["segments"]["kept"] is False
    # an explicit choice is not second-guessed
    explicit = SequenceEncoder("account", "ts", "label", small_config.replace(segments=2, segments_min_share=1.0)).fit(events)
    assert explicit.config_.blocks.segments == 2 and explicit.training_["segments"] is None
    with pytest.raises(InputError, match="segments_min_share"):
        EncoderConfig.of(segments_min_share=1.5)
