"""seqae classifier: XGBoost on latent codes, with threshold policies, metrics and explanations.

Names are imported on first use (PEP 562), so the ``seqae`` command line starts without xgboost."""
import importlib

_WHERE = {"LatentClassifier": "classifier.estimator", "FeatureTable": "classifier.data", "read_latents": "classifier.data",
          "choose_threshold": "classifier.thresholds", "parse_policy": "classifier.thresholds"}
__all__ = list(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'classifier' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
