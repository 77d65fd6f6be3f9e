"""The dilated convolution branch beside the LSTM (``conv_dim``): padding-blind, placed and named in
the code, trained with the rest, refused by a causal encoder."""
import numpy as np
import pytest
import torch

from encoder import EncoderConfig, SequenceEncoder
from encoder.config import conv_depth_for
from encoder.io.errors import InputError
from encoder.nn.config import ModelConfig
from encoder.nn.conv import DilatedConvBranch
from encoder.nn.model import LSTMAutoencoder


@pytest.mark.parametrize("patch", [1, 2])
def test_codes_do_not_depend_on_padding_or_what_it_holds(patch):
    torch.manual_seed(0)
    model = LSTMAutoencoder(ModelConfig(n_numeric=2, hidden_size=8, latent_dim=4, conv_dim=3, conv_depth=3,
                                        patch=patch)).eval()
    num, cat = torch.randn(3, 21, 2), torch.zeros(3, 21, 0, dtype=torch.long)
    lengths = torch.tensor([21, 12, 5])
    garbage = num.clone()
    for b, n in enumerate(lengths.tolist()):
        garbage[b, n:] = 1e3
    with torch.no_grad():
        z = model.encoder(num, cat, lengths)  # (3, 7)
        torch.testing.assert_close(model.encoder(garbage, cat, lengths), z)
        for b, n in enumerate(lengths.tolist()):  # alone and unpadded, each sequence gets the same code
            torch.testing.assert_close(model.encoder(num[b:b + 1, :n], cat[b:b + 1, :n], lengths[b:b + 1])[0], z[b],
                                       atol=1e-5, rtol=1e-5)


def test_the_branch_reads_beyond_its_step_as_far_as_its_receptive_field():
    torch.manual_seed(0)
    branch = DilatedConvBranch(1, 4, 2, depth=2).eval()  # reach: 1 + 4 (2^2 - 1) = 13 steps, 6 each side
    x = torch.zeros(1, 30, 1)
    lengths = torch.tensor([30])
    base = branch(x, lengths)
    moved = x.clone()
    moved[0, 15] = 1.0
    changed = (branch(moved, lengths) - base).abs().amax(-1)[0] > 0  # (30,)
    assert changed.nonzero().flatten().tolist() == list(range(9, 22))


def test_the_branch_extends_the_pooled_code_and_is_named(events, small_config):
    cfg = small_config.replace(conv_dim=3, conv_depth=2)
    enc = SequenceEncoder("account", "ts", "label", cfg).fit(events)
    mc = enc.model_config_
    assert (mc.conv_dim, mc.pooled_dim) == (3, small_config.network.latent_dim + 3)
    layout = enc.code_layout()
    K = small_config.network.latent_dim
    assert layout["pooled"] == [f"z_{k}" for k in range(K + 3)] and layout["conv"] == [f"z_{k}" for k in range(K, K + 3)]
    assert next(iter(layout["summary"])) == f"z_{K + 3}"
    z = enc.transform(events)
    assert z.filter(like="z_").shape[1] == mc.code_dim
    assert z[layout["conv"]].std().gt(0).all()  # the branch's channels vary over entities
    off = SequenceEncoder("account", "ts", "label", small_config.replace(conv_dim=0)).fit(events)
    assert off.model_config_.conv_dim == 0 and off.code_layout()["conv"] == [] and off.model_.encoder.conv is None


def test_reconstruction_and_the_contrastive_term_both_train_the_branch():
    torch.manual_seed(0)
    mc = ModelConfig(n_numeric=2, hidden_size=8, latent_dim=4, conv_dim=3, conv_depth=2)
    model = LSTMAutoencoder(mc)
    num, cat, lengths = torch.randn(2, 9, 2), torch.zeros(2, 9, 0, dtype=torch.long), torch.tensor([9, 6])
    _, num_hat, _ = model(num, cat, lengths)
    ((num_hat - num) ** 2).mean().backward()  # the decoder reads the branch's pooled channels
    assert model.encoder.conv.output.weight.grad.abs().sum() > 0
    steps = model.encoder.steps(num, cat, lengths)  # what the contrastive term compares
    assert steps.shape == (2, 9, mc.pooled_dim)
    model.zero_grad()
    steps[..., mc.latent_dim:].sum().backward()
    assert model.encoder.conv.output.weight.grad.abs().sum() > 0


def test_conv_branch_round_trips_through_save_and_load(events, small_config, tmp_path):
    enc = SequenceEncoder("account", "ts", "label", small_config.replace(conv_dim=2, conv_depth=2)).fit(events)
    enc.save(tmp_path / "enc")
    again = SequenceEncoder.load(tmp_path / "enc")
    np.testing.assert_allclose(again.transform(events).filter(like="z_").to_numpy(),
                               enc.transform(events).filter(like="z_").to_numpy(), atol=1e-6)


@pytest.mark.parametrize("steps", [1, 2, 24, 150, 251, 256, 1000])
def test_the_default_depth_is_the_fewest_blocks_through_which_every_step_sees_every_other(steps):
    depth = conv_depth_for(steps)
    torch.manual_seed(0)
    branch = DilatedConvBranch(1, 8, 1, depth).double().eval()
    x, lengths = torch.zeros(1, steps, 1, dtype=torch.float64), torch.tensor([steps])
    moved = x.clone()
    moved[0, 0] = 1.0  # the first step reaches the last one
    assert (branch(moved, lengths) - branch(x, lengths))[0, -1].abs().item() > 0
    assert depth == 1 or 1 + 4 * (2 ** (depth - 1) - 1) < 2 * steps - 1  # one block fewer would not
    cfg = EncoderConfig.of(max_len=steps, conv_dim=4).resolved(np.array([steps]))  # over 256 events: patches
    assert cfg.network.conv_depth == conv_depth_for(-(-steps // cfg.data.patch)) and EncoderConfig.of(conv_depth=3).resolved(np.array([steps])).network.conv_depth == 3


def test_a_causal_encoder_refuses_the_branch():
    lengths = np.array([5, 8])
    assert EncoderConfig().resolved(lengths).network.conv_dim == 0 == EncoderConfig.of(unit="event").resolved(lengths).network.conv_dim
    with pytest.raises(InputError, match="conv_dim"):
        EncoderConfig.of(unit="event", conv_dim=8).resolved(lengths)
    assert EncoderConfig.of(unit="event", conv_dim=8, causal=False).resolved(lengths).network.conv_dim == 8
    with pytest.raises(InputError, match="conv_depth"):
        EncoderConfig.of(conv_depth=-1)
