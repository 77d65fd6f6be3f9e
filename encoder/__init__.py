"""seqae encoder: a denoising, masking-aware LSTM autoencoder from event tables to latent codes.

Names are imported on first use (PEP 562), so ``import encoder`` and the ``seqae`` command line
start without importing torch."""
import importlib

_WHERE = {"EncoderConfig": ".config", "SequenceEncoder": ".estimator", "load": ".estimator",
          "SeqaeError": ".errors", "InputError": ".errors", "ArtifactError": ".errors", "NotFitted": ".errors"}
__all__ = list(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'encoder' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name], __name__), name)
