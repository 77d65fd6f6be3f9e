"""seqae classifier: XGBoost on latent codes, with threshold policies, metrics and explanations.

Names are imported on first use (PEP 562), so the ``seqae`` command line starts without xgboost."""
import importlib

_WHERE = {"LatentClassifier": ".estimator", "FeatureTable": ".data", "read_latents": ".data",
          "choose_threshold": ".thresholds", "parse_policy": ".thresholds"}
__all__ = list(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'classifier' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name], __name__), name)
