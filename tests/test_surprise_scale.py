"""Standardised surprise (``surprise_scale``): the next-event head predicts a mean and a scale per
numeric channel, is trained by Gaussian likelihood, and the surprise is the error in predicted scales."""
import math

import numpy as np
import pytest
import torch

from encoder import SequenceEncoder
from encoder.nn.surprise import LOG_SCALE_RANGE, surprise
from encoder.training.losses import masked_gaussian_nll

NO_CAT = torch.zeros(1, 1, 0, dtype=torch.long)  # (B, T, F_cat) with no categorical column


def test_surprise_divides_the_error_by_the_predicted_scale():
    num = torch.tensor([[[3.0, 1.0]]])  # (B, T, F) = (1, 1, 2)
    head = torch.tensor([[[1.0, 1.0, math.log(2.0), 10.0]]])  # means 1, 1; log-scales log 2 and 10 (clamped)
    s = surprise(head, [], num, NO_CAT)
    torch.testing.assert_close(s, torch.tensor([[[1.0, 0.0]]]))  # (3 - 1) / 2, and 0 / e^3
    big = surprise(torch.tensor([[[0.0, -10.0]]]), [], torch.tensor([[[1.0]]]), NO_CAT)
    assert big.item() == pytest.approx(math.exp(-LOG_SCALE_RANGE[0]))  # a scale never below e^-3: no division by ~0
    plain = surprise(torch.tensor([[[1.0, 1.0]]]), [], num, NO_CAT)
    torch.testing.assert_close(plain, torch.tensor([[[2.0, 0.0]]]))  # without a scale: the signed error


def test_gaussian_nll_counts_valid_steps_and_is_lowest_at_the_true_scale():
    target = torch.tensor([[[2.0], [5.0], [100.0]]])  # (1, 3, 1); the third step is padding
    mean = torch.zeros(1, 3, 1)
    valid = torch.tensor([[1.0, 1.0, 0.0]])
    log_scale = torch.zeros(1, 3, 1)
    want = ((0.5 * 4.0) + (0.5 * 25.0)) / 2
    assert masked_gaussian_nll(mean, log_scale, target, valid).item() == want
    errors = torch.tensor([[[3.0]] * 3])
    losses = {s: masked_gaussian_nll(mean, torch.full((1, 3, 1), math.log(s)), errors, valid).item() for s in (1.0, 3.0, 9.0)}
    assert losses[3.0] < losses[1.0] and losses[3.0] < losses[9.0]


def test_an_encoder_with_a_scale_learns_saves_and_loads(events, small_config, tmp_path):
    cfg = small_config.replace(unit="event", epochs=4)  # the event unit's default: a scale
    enc = SequenceEncoder("account", "ts", "label", cfg).fit(events)
    assert enc.model_config_.surprise_scale and enc.config_.blocks.surprise_scale
    history = enc.history_
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    codes = enc.transform(events)
    again = SequenceEncoder.load(enc.save(tmp_path / "enc")).transform(events)
    z = [c for c in codes.columns if c.startswith("z_")]
    assert len(z) == enc.model_config_.code_dim and np.isfinite(codes[z].to_numpy()).all()
    np.testing.assert_array_equal(codes[z].to_numpy(), again[z].to_numpy())
