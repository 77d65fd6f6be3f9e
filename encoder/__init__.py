"""seqae encoder: a denoising, masking-aware LSTM autoencoder from event tables to latent codes."""
from .config import EncoderConfig
from .errors import ArtifactError, InputError, NotFitted, SeqaeError
from .estimator import SequenceEncoder, load

__all__ = ["EncoderConfig", "SequenceEncoder", "load", "SeqaeError", "InputError", "ArtifactError", "NotFitted"]
