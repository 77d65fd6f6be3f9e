"""``pipeline score`` on a Dask cluster: baseline features, codes and scores per partition of whole
entities (``encoder.dask_encode`` reads, partitions and writes; this module scores)."""
from __future__ import annotations

import functools
from pathlib import Path

from encoder.dask_encode import dask_client, in_file_order, read_events, run_partitions
from encoder.io.atomic import check_output


def _score_part(part, encoder_dir: str, classifier_dir: str, batch_size: int, threshold, source: str, path: str) -> int:
    """Score one partition with ``score_events`` and write it to ``path``."""
    from pipelines.scoring.batch import score_events
    if len(part) == 0:
        return 0
    return score_events(encoder_dir, classifier_dir, in_file_order(part), path, batch_size,
                        threshold=threshold, source=source)


def score_dask(encoder_dir, classifier_dir, events, out, batch_size: int = 4096, overwrite: bool = False,
               threshold: float | None = None, scheduler: str | None = None, workers: int | None = None,
               partitions: int | None = None) -> tuple[int, int]:
    """``pipeline score`` on Dask: baseline features, codes and scores of ``events`` per partition,
    as a partitioned Parquet dataset at ``out``. Returns (rows, files)."""
    from pipelines.scoring.models import load_models
    check_output(out, overwrite)
    encoder_dir, classifier_dir = str(Path(encoder_dir).resolve()), str(Path(classifier_dir).resolve())
    enc = load_models(encoder_dir, classifier_dir).encoder  # fails here, once, on bad or mismatched directories
    with dask_client(scheduler, workers) as client:
        ddf = read_events(events, enc.schema_.id_col, partitions, len(client.scheduler_info()["workers"]))
        task = functools.partial(_score_part, encoder_dir=encoder_dir, classifier_dir=classifier_dir,
                                 batch_size=batch_size, threshold=threshold, source=str(events))
        return run_partitions(client, ddf, task, out, overwrite)
