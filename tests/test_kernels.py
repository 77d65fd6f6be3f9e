"""Random-kernel features: MiniRocket's dilated kernels and their proportions of positive values."""
import numpy as np
import pytest
import torch

from encoder import EncoderConfig, SequenceEncoder
from encoder.io.errors import InputError
from encoder.nn.kernels import KERNELS, RandomKernelFeatures, dilations_for, untie


def _numpy_ppv(x: np.ndarray, kernel: np.ndarray, d: int, channels: np.ndarray, bias: float, padded: bool) -> float:
    """PPV of one kernel at dilation d over a sequence x (L, C), summed over ``channels``, computed directly."""
    L = len(x)
    sums = np.zeros(L)
    for t in range(L):
        for j, w in enumerate(kernel):
            s = t + (j - 4) * d
            if 0 <= s < L:
                sums[t] += w * x[s, channels].sum()
    inner = np.arange(4 * d, L - 4 * d)
    steps = np.arange(L) if padded or len(inner) == 0 else inner
    return float((sums[steps] > bias).mean())


def test_kernels_are_minirockets_and_dilations_span_the_window():
    assert KERNELS.shape == (84, 9) and bool((KERNELS.sum(1) == 0).all())  # six -1 and three 2: sum zero
    assert len({tuple(k.tolist()) for k in KERNELS}) == 84
    dilations, counts = dilations_for(840, 251)
    assert dilations[0] == 1 and dilations[-1] == 31 and sum(counts) == 10  # (251 - 1) / 8 = 31.25
    assert dilations_for(840, 9) == ([1], [10])


@pytest.mark.parametrize("features, steps", [(168, 60), (2520, 16)])  # a kernel: 1 bias at 2 dilations; 30 at 1
@pytest.mark.parametrize("fitted_on", ["other draws", "the same sequences"])
@pytest.mark.parametrize("path", ["compiled loop", "torch convolution"])
def test_features_match_a_direct_computation_and_never_read_padding(path, fitted_on, features, steps):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4, steps, 3, generator=gen)
    lengths = torch.tensor([steps, steps * 2 // 3, steps // 5 + 1, 3])
    # fitted on the coded sequences themselves, short ones repeat sums and a quantile can land on
    # one: the biases are moved off them, so neither path's count turns on its order of addition
    fit_on = torch.randn(4, steps, 3, generator=gen) if fitted_on == "other draws" else x
    rk = RandomKernelFeatures(3, features, steps).fit(fit_on, lengths, seed=0)
    rk.forward = rk.forward if path == "compiled loop" else rk.convolved
    got = rk(x, lengths)
    assert got.shape == (4, rk.out_dim) == (4, features) and len(rk.names()) == features
    garbage = x.clone()
    for b, n in enumerate(lengths.tolist()):
        garbage[b, n:] = 1e6
        alone = rk(x[b:b + 1, :n], lengths[b:b + 1])  # coded alone: the batch changes nothing
        torch.testing.assert_close(alone[0], got[b])
    torch.testing.assert_close(rk(garbage, lengths), got)
    f = 0
    for i, (d, count) in enumerate(zip(rk.dilations, rk.counts)):
        for k in (0, 1, 40, 83):  # an even and an odd pair of each dilation, and the last kernel
            channels = np.flatnonzero(rk.channels[i, k].numpy())
            for j in range(count):
                bias = float(rk.biases[f + k * count + j])
                for b, n in enumerate(lengths.tolist()):
                    want = _numpy_ppv(x[b, :n].double().numpy(), KERNELS[k].numpy(), d, channels, bias,
                                      padded=(k + i) % 2 == 0)
                    assert got[b, f + k * count + j].item() == pytest.approx(want, abs=1e-6)
        f += 84 * count


def test_a_bias_on_a_fitted_sum_moves_halfway_to_the_next():
    sums = np.array([3.0, 1.0, 3.0, 3.0, 2.0])
    assert untie(np.array([3.0, 1.5, 1.0]), sums).tolist() == [3.0 + 1e-3 * 3.0, 1.5, 1.5]  # the max: just above
    assert untie(np.array([2.0]), sums).tolist() == [2.5]
    x = torch.tensor([[0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])[..., None]  # repeated sums
    rk = RandomKernelFeatures(1, 84 * 3, 12).fit(x, torch.tensor([12]), seed=0)
    both = rk(x, torch.tensor([12])), rk.convolved(x, torch.tensor([12]))
    torch.testing.assert_close(*both)


def test_biases_come_from_training_values_and_constant_channels_are_left_out():
    gen = torch.Generator().manual_seed(1)
    x = torch.cat([torch.randn(8, 40, 1, generator=gen), torch.full((8, 40, 1), 3.0)], dim=-1)  # a constant channel
    rk = RandomKernelFeatures(2, 840, 40).fit(x, torch.full((8,), 40), seed=0)
    assert bool((rk.channels[..., 1] == 0).all()) and bool((rk.channels[..., 0] == 1).all())
    assert float(rk.biases.abs().max()) > 0
    ppv = rk(x, torch.full((8,), 40))
    assert 0.0 <= float(ppv.min()) and float(ppv.max()) <= 1.0 and float(ppv.std()) > 0.05


def test_kernel_features_options_are_validated_and_follow_the_unit():
    with pytest.raises(InputError, match="kernel_features"):
        EncoderConfig.of(kernel_features=50)
    with pytest.raises(InputError, match="kernel_features"):
        EncoderConfig.of(unit="event", kernel_features=840).resolved(np.array([5, 8]))  # causal
    assert EncoderConfig().resolved(np.array([5, 8])).blocks.kernel_features == 2520
    assert EncoderConfig.of(kernel_features=200).resolved(np.array([5, 8])).blocks.kernel_features == 168
    assert EncoderConfig.of(unit="event").resolved(np.array([5, 8])).blocks.kernel_features == 0


def test_the_entity_code_ends_with_named_kernel_features_that_survive_save_and_load(events, small_config, tmp_path):
    enc = SequenceEncoder("account", "ts", "label", small_config.replace(kernel_features=168)).fit(events)
    mc, layout = enc.model_config_, enc.code_layout()
    assert mc.kernel_dim == 168
    names = list(layout["kernels"].values())
    assert len(names) == 168 and names[0] == "ppv:d1/k0/b0"
    assert min(int(k[2:]) for k in layout["kernels"]) == mc.code_dim - 168  # the last channels of the code
    z = enc.transform(events)
    cols = list(layout["kernels"])
    ppv = z[cols].to_numpy()
    assert ppv.min() >= 0 and ppv.max() <= 1 and ppv.std(0).max() > 0  # fitted: features that vary
    loaded = SequenceEncoder.load(enc.save(tmp_path / "enc"))
    np.testing.assert_allclose(loaded.transform(events)[cols].to_numpy(), ppv, atol=1e-6)
    off = SequenceEncoder("account", "ts", "label", small_config.replace(kernel_features=0)).fit(events)
    assert off.code_layout()["kernels"] == {} and off.model_config_.code_dim == mc.code_dim - 168


def test_encoding_writes_the_kernel_features_beside_the_network_code_as_the_model_computes_them(events, small_config):
    """The encode path fills one (K, B) matrix per batch: the network's code, then the kernels'
    features written straight into its last rows. It must equal the model's own forward pass."""
    from encoder.sequences import entity_end_rows, gather_windows
    enc = SequenceEncoder("account", "ts", "label", small_config.replace(kernel_features=168)).fit(events)
    data, arrays = enc.prepare(events)
    num, cat, lengths = gather_windows(arrays, entity_end_rows(data.starts), enc.max_len_)
    with torch.inference_mode():
        expected = enc.model_.eval().encoder(num, cat, lengths).numpy()  # (entities, code_dim), one batch
    got = enc.transform(events, batch_size=7)  # several batches, the last one short
    z = got[[f"z_{k}" for k in range(enc.model_config_.code_dim)]].to_numpy()
    np.testing.assert_allclose(z, expected, rtol=0, atol=1e-6)
    kernels = list(enc.code_layout()["kernels"])
    np.testing.assert_array_equal(got[kernels].to_numpy(), expected[:, -168:])  # counts over counts: exact
