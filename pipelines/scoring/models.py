"""The trained pair every scoring job runs, loaded and checked once: an encoder and a classifier
trained on its codes (and, where it reads them, on baseline features it records the recipe of)."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from classifier import LatentClassifier
from encoder import SequenceEncoder
from encoder.io.errors import ArtifactError
from pipelines.features import FeatureRecipe

BASELINE_PREFIXES = ("raw_", "agg_")  # feature columns built by ``pipelines.features``


@dataclasses.dataclass(frozen=True)
class ScoringModels:
    """An encoder, the classifier trained on its codes, and the classifier's baseline-feature recipe
    (None when it reads codes only)."""

    encoder: SequenceEncoder
    classifier: LatentClassifier
    recipe: FeatureRecipe | None

    @property
    def needs_base(self) -> bool:
        return self.recipe is not None

    @property
    def reconstruction_error(self) -> bool:
        return "recon_error" in self.classifier.features_


def load_models(encoder_dir: str | Path, classifier_dir: str | Path) -> ScoringModels:
    """Load both directories; refuse a classifier trained on another encoder's codes, or one that
    reads baseline features without recording how they were built."""
    enc = SequenceEncoder.load(encoder_dir)
    clf = LatentClassifier.load(classifier_dir)
    if clf.encoder_id_ and clf.encoder_id_ != enc.encoder_id:
        raise ArtifactError(f"classifier '{classifier_dir}' was trained on encoder {clf.encoder_id_[:12]}, "
                            f"but '{encoder_dir}' is encoder {enc.encoder_id[:12]}")
    needs_base = any(f.startswith(BASELINE_PREFIXES) for f in clf.features_)
    if needs_base and not clf.recipe_:
        raise ArtifactError(f"classifier '{classifier_dir}' uses baseline features but records no recipe for them")
    return ScoringModels(enc, clf, FeatureRecipe.from_dict(clf.recipe_) if needs_base else None)
