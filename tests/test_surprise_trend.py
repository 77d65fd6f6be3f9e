"""Surprise trend channels: the recent mean and variance of each surprise channel, the same on every path."""
import numpy as np
import pandas as pd
import pytest
import torch

from encoder import EncoderConfig, SequenceEncoder
from encoder.io.errors import InputError
from encoder.nn.config import ModelConfig
from encoder.nn.model import SequenceEncoderNet
from encoder.nn.surprise import TREND_BLOCK, latest_trend, running_trend

BETA = 0.5 ** (1 / 3)  # half-life 3 events


def test_running_trend_is_pandas_ewm_mean_and_variance():
    rng = np.random.default_rng(0)
    s = rng.normal(size=(2, TREND_BLOCK + 40, 3))  # longer than one block: the carried sums join them
    got = running_trend(torch.from_numpy(s), BETA).numpy()
    for b in range(2):
        ewm = pd.DataFrame(s[b]).ewm(alpha=1 - BETA, adjust=True)
        np.testing.assert_allclose(got[b, :, :3], ewm.mean().to_numpy(), atol=1e-12)
        np.testing.assert_allclose(got[b, :, 3:], ewm.var(bias=True).to_numpy(), atol=1e-12)
    assert (got[:, 0, 3:] == 0).all()  # a first event: its own surprise, no variance


def test_a_steady_series_has_no_variance_and_an_erratic_one_has():
    steady = torch.full((1, 12, 1), 0.7, dtype=torch.float64)
    erratic = torch.tensor([[[0.0], [2.0]] * 6], dtype=torch.float64)
    assert running_trend(steady, BETA)[0, -1, 1] == pytest.approx(0.0, abs=1e-12)
    assert running_trend(steady, BETA)[0, -1, 0] == pytest.approx(0.7)
    assert running_trend(erratic, BETA)[0, -1, 1] > 0.5


def test_latest_trend_reads_each_sequence_up_to_its_length_only():
    rng = np.random.default_rng(1)
    s = torch.from_numpy(rng.normal(size=(3, 9, 2)))
    lengths = torch.tensor([9, 4, 1])
    padded = s.clone()
    padded[1, 4:], padded[2, 1:] = float("nan"), 1e30  # padding may hold anything
    got = latest_trend(padded, lengths, BETA)
    want = torch.stack([running_trend(s[b:b + 1, :n], BETA)[0, -1] for b, n in enumerate(lengths.tolist())])
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("scale", [False, True])  # surprise_scale: the head predicts a mean and a log-scale
def test_step_by_step_codes_equal_the_one_pass_codes(scale):
    torch.manual_seed(0)
    mc = ModelConfig(n_numeric=3, cardinalities=(5,), embedding_dims=(2,), hidden_size=8, bidirectional=False,
                     pooling=("last", "mean", "max"), latent_dim=4, surprise=True, causal=True, surprise_halflife=3.0,
                     surprise_scale=scale)
    net = SequenceEncoderNet(mc).double().eval()
    assert net.next_numeric.out_features == (6 if scale else 3)
    B, T = 3, TREND_BLOCK + 20
    num, cat = torch.randn(B, T, 3, dtype=torch.float64), torch.randint(1, 5, (B, T, 1))
    with torch.no_grad():
        whole, _, _ = net.running_codes(num, cat, torch.full((B,), T))
        carry, steps = net.empty_carry(B, torch.float64), []
        for t in range(T):
            code, carry = net.step(num[:, t], cat[:, t], carry)
            steps.append(code)
    assert whole.shape[-1] == mc.code_dim == 4 + 4 * 3
    torch.testing.assert_close(torch.stack(steps, 1), whole, atol=1e-12, rtol=0)


def test_layout_names_the_trend_channels_and_halflife_zero_leaves_them_out(events, small_config):
    cfg = small_config.replace(unit="event", epochs=1)
    enc = SequenceEncoder("account", "ts", "label", cfg).fit(events)
    names = list(enc.code_layout()["surprise"].values())
    S = len(names) // 3
    assert [n.split(":")[0] for n in names] == ["surprise"] * S + ["surprise_mean"] * S + ["surprise_var"] * S
    assert names[S].split(":")[1] == names[0].split(":")[1]
    assert enc.config_.blocks.surprise_halflife == 3.0 and enc.model_config_.surprise_halflife == 3.0
    plain = SequenceEncoder("account", "ts", "label", cfg.replace(surprise_halflife=0.0)).fit(events)
    assert plain.model_config_.code_dim == enc.model_config_.code_dim - 2 * S
    codes = plain.transform(events)
    assert sum(c.startswith("z_") for c in codes.columns) == plain.model_config_.code_dim


def test_negative_halflife_is_refused():
    with pytest.raises(InputError, match="surprise_halflife"):
        EncoderConfig.of(surprise_halflife=-1.0)
