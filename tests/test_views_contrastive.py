"""Overlapping crops share exactly the stretch they claim; the contrastive loss sees shared steps only."""
import numpy as np
import torch

from encoder.training.losses import hierarchical_contrastive
from encoder.training.views import crop, overlapping_crops, shared_steps


def test_crops_stay_inside_each_sequence_and_overlap():
    gen = torch.Generator().manual_seed(0)
    lengths = torch.tensor([1, 2, 5, 9, 40] * 40)
    pair = overlapping_crops(lengths, gen)
    assert (pair.shared >= 1).all()
    assert (0 <= pair.start1).all() and (pair.start1 <= pair.shared_start).all()
    assert (pair.shared_start + pair.shared <= pair.end2).all() and (pair.end2 <= lengths).all()
    assert len(set(pair.shared[lengths == 40].tolist())) == 1  # one shared fraction per batch, as TS2Vec
    sizes = {int(overlapping_crops(lengths, gen).shared[-1]) for _ in range(30)}
    assert len(sizes) > 10  # shared stretches of many sizes across batches


def test_crop_takes_the_steps_asked_and_pads_with_zeros():
    num = torch.arange(1, 13, dtype=torch.float32).view(2, 6, 1)  # sequence 0: 1..6, sequence 1: 7..12
    cat = num.long() + 100
    out_num, out_cat, lengths = crop(num, cat, torch.tensor([2, 0]), torch.tensor([3, 1]))
    assert out_num[..., 0].tolist() == [[3, 4, 5], [7, 0, 0]]
    assert out_cat[..., 0].tolist() == [[103, 104, 105], [107, 0, 0]]
    assert lengths.tolist() == [3, 1]


def test_shared_steps_align_the_same_events_from_both_views():
    gen = torch.Generator().manual_seed(1)
    lengths = torch.tensor([7, 3, 12, 1])
    T = int(lengths.max())
    steps = torch.arange(T, dtype=torch.float32)[None, :, None].expand(4, T, 1)  # each step holds its index
    pair = overlapping_crops(lengths, gen)
    view1, _, _ = crop(steps, steps.long(), pair.start1, pair.lengths1)
    view2, _, _ = crop(steps, steps.long(), pair.shared_start, pair.lengths2)
    z1, z2, valid = shared_steps(view1, view2, pair)
    assert valid.sum(1).tolist() == pair.shared.tolist()
    assert torch.equal(z1[valid], z2[valid])  # the same events, seen through either view
    first = z1[:, 0, 0].long()
    assert first.tolist() == pair.shared_start.tolist()


def test_contrastive_loss_is_low_for_twins_and_ignores_unshared_steps():
    torch.manual_seed(0)
    z = torch.randn(6, 10, 8)
    valid = torch.arange(10)[None, :] < torch.tensor([10, 4, 7, 1, 10, 3])[:, None]
    twins = hierarchical_contrastive(z, z + 0.01 * torch.randn(6, 10, 8), valid)
    strangers = hierarchical_contrastive(z, torch.randn(6, 10, 8), valid)
    assert twins < 0.5 * strangers
    other = z.clone()
    other[~valid] = 1e3  # garbage where the views share nothing
    torch.testing.assert_close(hierarchical_contrastive(other, z, valid), hierarchical_contrastive(z, z, valid))
    assert np.isfinite(float(hierarchical_contrastive(z[:1], z[:1], valid[:1])))  # one sequence: temporal only


def test_unit_defaults_fill_only_what_is_left_open():
    from encoder import EncoderConfig
    entity = EncoderConfig().resolved([9, 5, 7])
    assert (entity.data.max_len, entity.network.pooling, entity.training.contrastive_weight, entity.training.recency_halflife,
            entity.blocks.surprise, entity.blocks.surprise_scale, entity.data.patch) == (9, ("max",), 1.0, 0.0, False, False, 1)
    event = EncoderConfig.of(unit="event", max_len=4).resolved([9, 5, 7])
    assert (event.data.max_len, event.network.pooling, event.training.contrastive_weight, event.training.recency_halflife, event.blocks.surprise,
            event.blocks.surprise_scale) == (4, ("last", "mean", "max"), 0.0, 3.0, True, True)
    assert event.network.causal is True and event.network.bidirectional is False and entity.network.causal is False and entity.network.bidirectional
    chosen = EncoderConfig.of(unit="event", pooling=("attention",), contrastive_weight=0.5,
                              surprise=False, surprise_scale=False).resolved([9])
    assert (chosen.network.pooling, chosen.training.contrastive_weight, chosen.blocks.surprise, chosen.blocks.surprise_scale) == \
        (("attention",), 0.5, False, False)
    assert chosen.network.causal is False and chosen.network.bidirectional  # attention pooling: the windowed encoder
