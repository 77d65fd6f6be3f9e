"""Scoring jobs: a trained encoder and classifier over an event table, streamed batch by batch."""
from __future__ import annotations

from pathlib import Path

from classifier import FeatureTable, LatentClassifier
from encoder import SequenceEncoder
from encoder.atomic import write_parquet_stream
from encoder.errors import ArtifactError

from .features import FeatureRecipe, features_in_output_order


def score_events(encoder_dir: str | Path, classifier_dir: str | Path, events, out: str | Path,
                 batch_size: int = 4096, overwrite: bool = False, threshold: float | None = None,
                 source: str | None = None) -> int:
    """Write the scores parquet (keys, prediction, score, decision or proba_*) atomically.

    Codes are computed in batches of ``batch_size`` sequences and written as they come; baseline
    features, when the classifier uses them, are rebuilt point in time from the recipe it recorded.
    Returns the number of rows written. The output is identical on a re-run. ``source`` names
    the input in error messages (default: ``events`` itself when it is a path).
    """
    source = source or (str(events) if isinstance(events, (str, Path)) else "<DataFrame>")
    enc = SequenceEncoder.load(encoder_dir)
    clf = LatentClassifier.load(classifier_dir)
    if clf.encoder_id_ and clf.encoder_id_ != enc.encoder_id:
        raise ArtifactError(f"classifier '{classifier_dir}' was trained on encoder {clf.encoder_id_[:12]}, "
                            f"but '{encoder_dir}' is encoder {enc.encoder_id[:12]}")
    needs_base = any(f.startswith(("raw_", "agg_")) for f in clf.features_)
    if needs_base and not clf.recipe_:
        raise ArtifactError(f"classifier '{classifier_dir}' uses baseline features but records no recipe for them")
    unit = enc.config_.unit
    data, arrays = enc.prepare(events, keep_frame=needs_base)
    base = None
    if needs_base:
        recipe = FeatureRecipe.from_dict(clf.recipe_)
        base = features_in_output_order(recipe, data, unit)
        data.frame = data.frame.iloc[:0]
    keys = [enc.schema_.id_col] + ([enc.schema_.time_col] if unit == "event" else [])
    recon = "recon_error" in clf.features_
    batches = enc.iter_prepared(data, arrays, unit, batch_size, reconstruction_error=recon)
    return write_parquet_stream(_scores(batches, base, clf, keys, enc.encoder_id, source, threshold), out,
                                {"encoder_id": enc.encoder_id}, overwrite)


def _scores(batches, base, clf, keys, encoder_id, source, threshold):
    """Prediction frames for each batch of codes, joined with its rows of baseline features."""
    offset = 0
    for batch in batches:
        if base is not None:
            batch = batch.join(base.iloc[offset:offset + len(batch)].reset_index(drop=True))
        offset += len(batch)
        yield clf.predict_frame(FeatureTable(batch, keys, clf.features_, encoder_id, source=source), threshold=threshold)
