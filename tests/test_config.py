"""EncoderConfig in parts, and every option reaching the part of the code it sets."""
import numpy as np
import pytest
import torch

from encoder import EncoderConfig, SequenceEncoder
from encoder.config import PART_OF, PARTS, DataOptions, read_config_file
from encoder.io.errors import InputError
from encoder.sequences import entity_end_rows, gather_windows
from encoder.training.loop import Trainer


def test_options_live_in_named_parts_and_load_from_either_layout(tmp_path):
    cfg = EncoderConfig.of(hidden_size=8, epochs=0, lags=(1, 2), noise_std=0.0, kernel_features=168)
    assert (cfg.network.hidden_size, cfg.training.epochs, cfg.data.lags, cfg.noise.noise_std,
            cfg.blocks.kernel_features) == (8, 0, (1, 2), 0.0, 168)
    assert set(cfg.to_dict()) == set(PARTS) and set(cfg.options()) == set(PART_OF)
    assert EncoderConfig.from_dict(cfg.to_dict()) == cfg == EncoderConfig.from_dict(cfg.options())  # parts, or flat (format 2)
    assert cfg.replace(hidden_size=16).network.hidden_size == 16 and cfg.replace(hidden_size=None) == cfg
    with pytest.raises(InputError, match="unknown option 'hidden'"):
        EncoderConfig.of(hidden=8)
    with pytest.raises(InputError, match="option 'epochs' belongs to part 'training', not 'network'"):
        EncoderConfig.from_dict({"network": {"epochs": 3}})
    with pytest.raises(InputError, match="config 'hidden_size' must be a whole number, got 2.5"):
        EncoderConfig.of(hidden_size=2.5)
    toml = tmp_path / "c.toml"
    toml.write_text('id = "account"\nlatent_dim = 6\n[network]\nhidden_size = 12\n[training]\nepochs = 4\n')
    read, columns = read_config_file(toml)
    assert (read.network.latent_dim, read.network.hidden_size, read.training.epochs) == (6, 12, 4)
    assert columns == {"id": "account"}


def test_data_options_reach_the_preprocessor(events):
    """``diffs`` adds each numeric channel's step difference within its entity; ``max_vocab`` caps
    every vocabulary."""
    enc = SequenceEncoder("account", "ts", "label", EncoderConfig.of(epochs=0, diffs=True, max_vocab=1,
                                                                     min_freq=1, min_entities=1, kernel_features=0))
    enc.fit(events)
    names = enc.preprocessor_.numeric_channels
    assert "signal__diff" in names and len(enc.preprocessor_.vocab_["channel"]) == 1
    data, arrays = enc.prepare(events)
    x, d = arrays.num[:, names.index("signal")], arrays.num[:, names.index("signal__diff")]
    first = np.arange(len(x)) == arrays.starts
    np.testing.assert_allclose(d[~first], (x - np.r_[0, x[:-1]])[~first], rtol=1e-5, atol=1e-6)
    assert (d[first] == 0).all()


def test_network_options_shape_the_network(events, small_config):
    enc = SequenceEncoder("account", "ts", "label", small_config.replace(epochs=0, conv_dim=3, conv_channels=5))
    conv = [m for m in enc.fit(events).model_.encoder.conv.modules() if isinstance(m, torch.nn.Conv1d)]
    assert conv and conv[0].out_channels == 5


def _trainer(events, config):
    enc = SequenceEncoder("account", "ts", "label", config.replace(epochs=0, kernel_features=0)).fit(events)
    _, arrays = enc.prepare(events)
    ends = entity_end_rows(arrays.starts)
    return Trainer(enc.model_, enc.config_.replace(**config.training.__dict__ | {"epochs": 1}), arrays, ends, ends[:2],
                   enc.max_len_), ends


def test_training_options_reach_the_optimiser_and_the_loss(events, small_config, monkeypatch):
    trainer, ends = _trainer(events, small_config.replace(lr=0.01, weight_decay=0.3, lr_patience=7, grad_clip=0.25))
    group = trainer.optimizer.param_groups[0]
    assert (group["lr"], group["weight_decay"], trainer.scheduler.patience) == (0.01, 0.3, 7)
    clipped = []
    real = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda params, norm: clipped.append(norm) or real(params, norm))
    trainer.train_step(ends[:4])
    assert clipped == [0.25]

    def loss(**weights):  # the clean loss of one batch under other weights of the objective
        t, _ = _trainer(events, small_config.replace(unit="event", **weights))
        num, cat, lengths = gather_windows(t.arrays, t.train_ends[:16], t.max_len)
        with torch.no_grad():
            return float(t.get_loss(num, cat, lengths, num, cat))
    # each weight multiplies its term: the loss is linear in it
    for name in ("categorical_weight", "next_event_weight"):
        l0, l1, l2 = loss(**{name: 0.0}), loss(**{name: 1.0}), loss(**{name: 2.0})
        assert l1 != l0 and l2 - l1 == pytest.approx(l1 - l0, rel=1e-4)


def test_the_preprocessor_reads_the_data_part_only(events):
    enc = SequenceEncoder("account", "ts", "label", EncoderConfig.of(epochs=0, kernel_features=0)).fit(events)
    assert isinstance(enc.preprocessor_.config, DataOptions)
