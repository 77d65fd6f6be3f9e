"""Scoring jobs: a trained encoder and classifier over an event table, streamed batch by batch."""
from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from classifier import FeatureTable, LatentClassifier
from encoder import SequenceEncoder
from encoder.atomic import atomic_output
from encoder.errors import ArtifactError

from .features import FeatureRecipe, features_in_output_order


def score_events(encoder_dir: str | Path, classifier_dir: str | Path, events, out: str | Path,
                 batch_size: int = 4096, overwrite: bool = False, threshold: float | None = None) -> int:
    """Write the scores parquet (keys, prediction, score, decision or proba_*) atomically.

    Codes are computed in batches of ``batch_size`` sequences and written as they come; baseline
    features, when the classifier uses them, are rebuilt point in time from the recipe it recorded.
    Returns the number of rows written. The output is identical on a re-run.
    """
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
        sorted_frame = data.frame.iloc[data.order].reset_index(drop=True)
        base = features_in_output_order(recipe, sorted_frame, data.times, data.codes, data.starts, data.order, unit)
        data.frame = data.frame.iloc[:0]
    keys = [enc.schema_.id_col] + ([enc.schema_.time_col] if unit == "event" else [])
    recon = "recon_error" in clf.features_
    rows = 0
    with atomic_output(out, overwrite) as tmp:
        writer = None
        try:
            for batch in enc.iter_prepared(data, arrays, unit, batch_size, reconstruction_error=recon):
                if base is not None:
                    batch = batch.join(base.iloc[rows:rows + len(batch)].reset_index(drop=True))
                table = FeatureTable(batch, keys, clf.features_, enc.encoder_id, source=str(events))
                scores = clf.predict_frame(table, threshold=threshold)
                arrow = pa.Table.from_pandas(scores, preserve_index=False)
                if writer is None:
                    meta = dict(arrow.schema.metadata or {}) | {b"encoder_id": enc.encoder_id.encode()}
                    writer = pq.ParquetWriter(tmp, arrow.schema.with_metadata(meta))
                writer.write_table(arrow.cast(writer.schema))
                rows += len(batch)
        finally:
            if writer is not None:
                writer.close()
    return rows
