"""seqae encoder: a denoising, masking-aware LSTM autoencoder from event tables to latent codes.

Names are imported on first use (PEP 562), so ``import encoder`` and the ``seqae`` command line
start without importing torch."""
import importlib

_WHERE = {"EncoderConfig": "encoder.config", "SequenceEncoder": "encoder.estimator", "load": "encoder.estimator",
          "SeqaeError": "encoder.io.errors", "InputError": "encoder.io.errors", "ArtifactError": "encoder.io.errors", "NotFitted": "encoder.io.errors"}
__all__ = list(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'encoder' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
