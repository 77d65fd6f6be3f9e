"""Scoring jobs: a trained encoder and classifier over an event table, streamed batch by batch."""
from __future__ import annotations

from pathlib import Path

from classifier import FeatureTable
from encoder import events as ev
from encoder.io.atomic import check_apart, write_parquet_stream
from pipelines.features import features_in_output_order
from pipelines.scoring.models import load_models

BUCKET_ROWS = 1_000_000  # a Parquet input above this many events is scored in buckets of entities


def score_events(encoder_dir: str | Path, classifier_dir: str | Path, events, out: str | Path,
                 batch_size: int = 4096, overwrite: bool = False, threshold: float | None = None,
                 source: str | None = None, bucket_rows: int = BUCKET_ROWS) -> int:
    """Write the scores parquet (keys, prediction, score, decision or proba_*) atomically.

    Codes are computed in batches of ``batch_size`` sequences and written as they come; baseline
    features, when the classifier uses them, are rebuilt point in time from the recipe it recorded.
    Returns the number of rows written. The output is identical on a re-run. ``source`` names
    the input in error messages (default: ``events`` itself when it is a path).

    Memory: a Parquet input of more than ``bucket_rows`` events is read one bucket of entities at
    a time (``ev.entity_buckets``: only the id column is read whole; each bucket's rows are kept
    as the file is scanned), so peak memory follows the bucket, not the table. Rows are then
    written bucket by bucket, in input order within each; a smaller input (or a CSV, or a
    DataFrame) is scored in one piece, in input order.
    """
    source = source or (str(events) if isinstance(events, (str, Path)) else "<DataFrame>")
    check_apart(out, events)
    models = load_models(encoder_dir, classifier_dir)
    enc, clf, recipe, needs_base = models.encoder, models.classifier, models.recipe, models.needs_base
    unit = enc.config_.data.unit
    keys = [enc.schema_.id_col] + ([enc.schema_.time_col] if unit == "event" else [])
    recon = models.reconstruction_error

    def scored():  # a generator: nothing is read before the output is known to be writable
        for part in _parts(events, enc.schema_, bucket_rows):
            data, arrays = enc.prepare(part, keep_frame=needs_base, source=source)
            base = None
            if needs_base:
                base = features_in_output_order(recipe, data, unit)
                data.frame = data.frame.iloc[:0]
            batches = enc.iter_prepared(data, arrays, unit, batch_size, reconstruction_error=recon)
            yield from _scores(batches, base, clf, keys, enc.encoder_id, source, threshold)
    return write_parquet_stream(scored(), out, {"encoder_id": enc.encoder_id}, overwrite)


def _parts(events, schema, bucket_rows: int):
    """``events`` whole, or (a large Parquet input) one DataFrame per bucket of entities."""
    names = ev.table_columns(events)[0] if isinstance(events, (str, Path)) else []
    buckets = ev.entity_buckets(events, schema.id_col, bucket_rows) if schema.id_col in names else None
    if buckets is None:  # one piece (and a missing column gets its usual error from ``prepare``)
        yield events
        return
    wanted = [c for c in (schema.id_col, schema.time_col, schema.label_col, *schema.features) if c in names]
    for ids in buckets:
        yield ev.read_bucket(events, wanted, schema.categorical, schema.id_col, ids)


def _scores(batches, base, clf, keys, encoder_id, source, threshold):
    """Prediction frames for each batch of codes, joined with its rows of baseline features."""
    offset = 0
    for batch in batches:
        if base is not None:
            batch = batch.join(base.iloc[offset:offset + len(batch)].reset_index(drop=True))
        offset += len(batch)
        yield clf.predict_frame(FeatureTable(batch, keys, clf.features_, encoder_id, source=source), threshold=threshold)
