"""Windows keep the latest events and never a later one; corruption never touches padding."""
import numpy as np
import torch

from encoder import EncoderConfig
from encoder.sequences import EventArrays, entity_end_rows, gather_windows, valid_mask
from encoder.training.noise import corrupt, gaussian_noise, unknown_replacement


def _arrays():
    num = np.arange(8, dtype=np.float32)[:, None] + 1  # rows 0..7 hold values 1..8
    cat = np.arange(8, dtype=np.int64)[:, None] + 2
    return EventArrays(num, cat, np.array([0, 0, 0, 0, 0, 5, 5, 5]))


def test_windows_keep_latest_and_pad_tail():
    a = _arrays()
    assert entity_end_rows(a.starts).tolist() == [4, 7]
    num, cat, lengths = gather_windows(a, np.array([4, 5]), max_len=3)
    assert lengths.tolist() == [3, 1]
    assert num[0, :, 0].tolist() == [3, 4, 5]  # rows 2..4: the latest three of entity 0
    assert num[1, :, 0].tolist() == [6, 0, 0] and cat[1, :, 0].tolist() == [7, 0, 0]


def test_event_window_has_no_later_event():
    a = _arrays()
    num, _, lengths = gather_windows(a, np.array([1]), max_len=10)
    assert num[0, :, 0].tolist() == [1, 2] and lengths.tolist() == [2]


def test_corruption_leaves_padding_and_zero_rates_are_identity():
    gen = torch.Generator().manual_seed(0)
    num = torch.ones(4, 5, 3)
    cat = torch.full((4, 5, 2), 3)
    lengths = torch.tensor([5, 3, 1, 2])
    valid = valid_mask(lengths, 5)
    num[~valid], cat[~valid] = 0.0, 0
    cfg = EncoderConfig.of(noise_std=1.0, step_dropout=0.5, feature_dropout=0.5, unknown_rate=0.5)
    n2, c2 = corrupt(num, cat, valid, cfg.noise, gen)
    assert torch.all(n2[~valid] == 0) and torch.all(c2[~valid] == 0)
    assert not torch.equal(n2, num) and not torch.equal(c2, cat)
    off = EncoderConfig.of(noise_std=0, step_dropout=0, feature_dropout=0, unknown_rate=0)
    n3, c3 = corrupt(num, cat, valid, off.noise, gen)
    assert torch.equal(n3, num) and torch.equal(c3, cat)
    assert torch.equal(gaussian_noise(num, valid, 0.0, gen), num)
    assert torch.all(unknown_replacement(cat, 1.0, gen)[valid] == 1)
