"""seqae classifier: XGBoost on latent codes, with threshold policies, metrics and explanations."""
from .data import FeatureTable, read_latents
from .estimator import LatentClassifier
from .thresholds import choose_threshold, parse_policy

__all__ = ["LatentClassifier", "FeatureTable", "read_latents", "choose_threshold", "parse_policy"]
