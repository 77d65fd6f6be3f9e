"""ModelConfig: the frozen description of the network, passed whole to it and saved in the manifest."""
from __future__ import annotations

import dataclasses

from encoder.nn.statistics import SUMMARY_STATS


def embedding_dim_for(cardinality: int) -> int:
    """Default embedding size for a vocabulary (fast.ai's rule of thumb, capped at 32)."""
    return int(min(32, max(2, round(1.6 * cardinality ** 0.56))))


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild ``LSTMAutoencoder``; saved in the encoder manifest."""

    n_numeric: int
    cardinalities: tuple[int, ...] = ()
    embedding_dims: tuple[int, ...] = ()
    hidden_size: int = 64
    num_layers: int = 1
    bidirectional: bool = True
    pooling: tuple[str, ...] = ("max",)
    latent_dim: int = 32
    dropout: float = 0.0
    max_len: int = 64
    patch: int = 1
    surprise: bool = False
    causal: bool = False
    surprise_halflife: float = 0.0
    surprise_scale: bool = False
    summary_stats: bool = False
    conv_dim: int = 0
    conv_depth: int = 0
    conv_channels: int = 32
    segments: int = 0
    kernel_features: int = 0

    @property
    def pooled_dim(self) -> int:
        """Width of the step codes and of their pooled part of the code: ``latent_dim`` from the LSTM,
        then ``conv_dim`` from the dilated convolution branch."""
        return self.latent_dim + self.conv_dim

    @property
    def segment_dim(self) -> int:
        """Channels of the segment maxima: ``pooled_dim`` for each of ``segments`` equal parts."""
        return self.segments * self.pooled_dim

    @property
    def surprise_dim(self) -> int:
        """Surprise channels of the code: one per numeric input channel and per categorical column,
        three times over with a ``surprise_halflife`` (the latest event's, their recent mean and variance)."""
        if not self.surprise:
            return 0
        return (self.n_numeric + len(self.cardinalities)) * (3 if self.surprise_halflife > 0 else 1)

    @property
    def summary_dim(self) -> int:
        """Summary-statistic channels of the code: ``len(SUMMARY_STATS)`` per numeric input channel."""
        return len(SUMMARY_STATS) * self.n_numeric if self.summary_stats else 0

    @property
    def kernel_dim(self) -> int:
        """Random-kernel channels of the code (``kernels.RandomKernelFeatures``): ``kernel_features``
        (a multiple of 84) where the sequences have numeric channels to convolve."""
        return self.kernel_features if self.n_numeric else 0

    @property
    def code_dim(self) -> int:
        """Width of the code: ``pooled_dim`` pooled channels, the ``segment_dim`` channels, the
        ``surprise_dim`` channels, the ``summary_dim`` channels, then the ``kernel_dim`` channels."""
        return self.pooled_dim + self.segment_dim + self.surprise_dim + self.summary_dim + self.kernel_dim

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        from encoder.config import legacy_options
        d = legacy_options(d, "model_config")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
