"""The steps of ``SequenceEncoder.fit`` around gradient training: the seeded initial network, the
random kernels' fit, and the decision to keep or drop the segment maxima. Everything but the
segment decision's input is fitted without gradients: what the untrained twin keeps."""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from encoder.config import ENCODE_BATCH, EncoderConfig
from encoder.nn.config import ModelConfig
from encoder.nn.model import LSTMAutoencoder
from encoder.nn.statistics import position_share
from encoder.sequences import EventArrays, gather_windows

SHARE_SEQUENCES = 4096  # sequences (at most) whose segment maxima decide a provisional ``segments``


def settle_segments(cfg: EncoderConfig, model: LSTMAutoencoder, arrays: EventArrays, ends: np.ndarray,
                    rng: np.random.Generator) -> tuple[EncoderConfig, ModelConfig, LSTMAutoencoder, dict]:
    """Keep or drop the provisional segment maxima of a trained ``model`` (eval mode): their
    ``position_share`` over the training sequences ending at ``ends`` (a seeded sample of
    ``SHARE_SEQUENCES`` when there are more) against ``cfg.blocks.segments_min_share``. Returns the
    config, model config and model to keep (dropped: ``segments`` 0, the same weights, a narrower
    code) and the manifest's record of the choice."""
    if len(ends) > SHARE_SEQUENCES:
        ends = np.sort(rng.choice(ends, SHARE_SEQUENCES, replace=False))
    mc, maxima = model.config, []
    with torch.inference_mode():
        for i in range(0, len(ends), ENCODE_BATCH):
            z, _, _ = model.encoder.encode(*gather_windows(arrays, ends[i:i + ENCODE_BATCH], cfg.data.max_len),
                                           kernels=False)  # (B, code_dim - kernel_dim): the maxima come before
            maxima.append(z[:, mc.pooled_dim:mc.pooled_dim + mc.segment_dim])  # (B, segments * K)
    share = position_share(torch.cat(maxima), cfg.blocks.segments)
    record = {"share": round(share, 4), "min_share": cfg.blocks.segments_min_share,
              "kept": bool(share >= cfg.blocks.segments_min_share)}
    if record["kept"]:
        return cfg, mc, model, record
    mc = dataclasses.replace(mc, segments=0)
    narrower = LSTMAutoencoder(mc)  # the maxima have no parameters: the trained weights fit as they are
    narrower.load_state_dict(model.state_dict())
    return cfg.replace(segments=0), mc, narrower.eval(), record


KERNEL_SEQUENCES = 1024  # training sequences (at most) whose channels and values fit the random kernels


def fit_kernels(kernels, arrays: EventArrays, ends: np.ndarray, max_len: int, seed: int) -> None:
    """Fit the random kernels' channel subsets and biases (``RandomKernelFeatures.fit``) on the
    training sequences ending at ``ends`` (a seeded sample of ``KERNEL_SEQUENCES`` when there are more)."""
    rng = np.random.default_rng(seed)
    if len(ends) > KERNEL_SEQUENCES:
        ends = np.sort(rng.choice(ends, KERNEL_SEQUENCES, replace=False))
    num, _, lengths = gather_windows(arrays, ends, max_len)  # (B, T, F_num), (B,)
    kernels.fit(num, lengths, seed)


def initial_network(mc: ModelConfig, seed: int) -> LSTMAutoencoder:
    """The network of ``mc`` at its seeded initialisation: where training starts, and what an
    untrained twin keeps. Nothing else draws from torch's generator before it, so the same seed
    gives the same weights whichever path builds it. The random kernels' buffers are zeros until
    ``fit_kernels``."""
    torch.manual_seed(seed)
    return LSTMAutoencoder(mc)
