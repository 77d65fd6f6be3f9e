"""Drift between a reference table and a current one, as the encoder sees them: the population
stability index (PSI) of every latent dimension and input feature, the share of categories the
encoder does not know, and the shift in sequence length.

PSI = sum over bins of (current share - reference share) * ln(current share / reference share),
shares floored at ``FLOOR`` so an empty bin counts, not divides by zero. Bins come from the
reference only:

- numeric values and latent dimensions: ``bins`` quantile bins of the reference (fewer when values
  tie, or when a bin would hold under ``ROWS_PER_BIN`` rows of the smaller file), plus one bin for
  missing values; each row also carries the PSI that sampling noise alone gives (``noise_level``);
- categorical columns: the encoder's vocabulary (what the model tells apart), its values in ``bins``
  bins of about equal reference mass by frequency rank, plus one bin for values it does not know (a
  column of identities such as device ids is mostly that bin, not thousands of noisy ones);
- time gap: ``log1p`` of seconds since the entity's previous event in the same file (an entity's
  first event there has none and is left out, so a shorter period does not read as drift);
- sequence length: events per entity in each file, quantile bins of the reference; reported apart
  (a file of a shorter period holds shorter sequences), not in the feature table nor ``max_psi``.

Flags: PSI >= ``MODERATE`` (0.1) "moderate", >= ``MAJOR`` (0.25) "major", the usual reading.
Either file may be an event table (encoded here) or a latent parquet of this encoder.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from encoder.io.errors import ArtifactError, InputError
from encoder.preprocessing import factorize_categories, lookup, vocab_positions

MODERATE, MAJOR = 0.1, 0.25
FLOOR = 1e-4
BINS = 10
ROWS_PER_BIN = 20


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """PSI of two count vectors over the same bins."""
    p = np.maximum(reference / max(reference.sum(), 1), FLOOR)
    q = np.maximum(current / max(current.sum(), 1), FLOOR)
    return float(np.sum((q - p) * np.log(q / p)))


def numeric_psi(reference: np.ndarray, current: np.ndarray, bins: int = BINS) -> float:
    """PSI of numeric values over quantile bins of the reference, missing values in a bin of their own."""
    ref, cur = np.asarray(reference, np.float64), np.asarray(current, np.float64)
    finite = ref[~np.isnan(ref)]
    edges = np.unique(np.quantile(finite, np.arange(1, bins) / bins)) if len(finite) else np.array([])

    def counts(x):
        b = np.where(np.isnan(x), len(edges) + 1, np.searchsorted(edges, np.nan_to_num(x), side="right"))
        return np.bincount(b, minlength=len(edges) + 2)
    return psi(counts(ref), counts(cur))


def categorical_psi(reference: np.ndarray, current: np.ndarray, n_known: int, bins: int = BINS) -> float:
    """PSI of vocabulary positions (``n_known`` = not in the vocabulary) over ``bins`` bins of about
    equal reference mass, values taken from the most to the least frequent in the reference (a value
    more frequent than one bin's share fills its own), and one bin for values not in the vocabulary.
    One bin per value of a large vocabulary would hold a handful of rows each, whose noise alone
    reads as drift; bins by frequency rank still see mass move between common and rare values."""
    counts = np.bincount(reference, minlength=n_known + 1)[:n_known]
    order = np.argsort(-counts, kind="stable")  # most frequent first
    before = (np.cumsum(counts[order]) - counts[order]) / max(counts.sum(), 1)  # reference share ahead of each value
    to_bin = np.empty(n_known + 1, np.int64)
    to_bin[order] = np.minimum((before * bins).astype(np.int64), bins - 1)
    to_bin[n_known] = bins  # not in the vocabulary
    return psi(np.bincount(to_bin[reference], minlength=bins + 1), np.bincount(to_bin[current], minlength=bins + 1))


def flag(value: float) -> str:
    return "major" if value >= MAJOR else "moderate" if value >= MODERATE else "stable"


@dataclasses.dataclass
class Side:
    """One file as drift needs it: codes (rows, K); and for an event table the raw features, the
    entity lengths and time gaps."""

    source: str
    codes: np.ndarray
    frame: pd.DataFrame | None = None
    lengths: np.ndarray | None = None
    gaps: np.ndarray | None = None
    span_s: float = 0.0


def read_side(encoder, path: str | Path) -> Side:
    """An event table (encoded with ``encoder``) or a latent parquet written by it."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"file '{path}' does not exist")
    if _is_latents(path):
        from encoder.io.latents import latent_columns, read_parquet
        frame, meta = read_parquet(path)
        written_by = meta.get("encoder_id")
        if written_by and written_by != encoder.encoder_id:
            raise ArtifactError(f"latents '{path}' come from encoder {written_by[:12]}, not from "
                                f"{encoder.encoder_id[:12]}")
        return Side(str(path), frame[latent_columns(frame, path)].to_numpy(np.float64))
    data, arrays = encoder.prepare(path, keep_frame=True)
    codes = pd.concat(encoder.iter_prepared(data, arrays)).filter(like="z_").to_numpy(np.float64)  # (rows, K)
    has_prev = np.arange(len(data.times)) > data.starts
    gaps = np.log1p(np.maximum(np.diff(data.times, prepend=data.times[:1]), 0.0))[has_prev]
    return Side(str(path), codes, data.frame, np.bincount(data.codes), gaps, float(np.ptp(data.times)))


def _is_latents(path: Path) -> bool:
    if not (path.is_file() and path.suffix == ".parquet"):
        return False
    import pyarrow.parquet as pq
    try:
        schema = pq.read_schema(path)
    except Exception:
        return False
    return b"encoder_id" in (schema.metadata or {}) and any(n.startswith("z_") for n in schema.names)


def usable_bins(n_reference: int, n_current: int, bins: int) -> int:
    """At most ``bins``, and few enough that the smaller side has ``ROWS_PER_BIN`` rows a bin (at
    least 2): ten bins of five entities each would measure their own noise."""
    return max(2, min(bins, min(n_reference, n_current) // ROWS_PER_BIN))


def noise_level(cells: int, n_reference: int, n_current: int) -> float:
    """The PSI two samples of one population show on average over ``cells`` bins: about
    ``(cells - 1) * (1 / n_reference + 1 / n_current)`` (PSI is a symmetric chi-square divergence)."""
    return (cells - 1) * (1 / max(n_reference, 1) + 1 / max(n_current, 1))


def _row(name: str, kind: str, value: float, cells: int, n_ref: int, n_cur: int, bins: int) -> dict:
    return {"name": name, "kind": kind, "psi": value, "bins": bins, "noise": noise_level(cells, n_ref, n_cur)}


def drift_metrics(encoder, reference: Side, current: Side, bins: int = BINS) -> dict:
    """Every PSI (sorted, largest first) with its bins and no-drift level, unknown-category shares
    and the length shift, as ``metrics.json``."""
    if reference.codes.shape[1] != current.codes.shape[1]:
        raise InputError(f"'{reference.source}' has {reference.codes.shape[1]} code columns, "
                         f"'{current.source}' {current.codes.shape[1]}")
    n_ref, n_cur = len(reference.codes), len(current.codes)
    b = usable_bins(n_ref, n_cur, bins)
    rows = [_row(f"z_{k}", "latent", numeric_psi(reference.codes[:, k], current.codes[:, k], b), b, n_ref, n_cur, b)
            for k in range(reference.codes.shape[1])]
    unknown, lengths = {}, None
    if reference.frame is not None and current.frame is not None:
        schema, pre = encoder.schema_, encoder.preprocessor_
        n_ref, n_cur = len(reference.frame), len(current.frame)
        b = usable_bins(n_ref, n_cur, bins)
        for c in schema.numeric:
            value = numeric_psi(reference.frame[c].to_numpy(np.float64, na_value=np.nan),
                                current.frame[c].to_numpy(np.float64, na_value=np.nan), b)
            rows.append(_row(c, "numeric", value, b, n_ref, n_cur, b))  # (the missing bin: mostly empty)
        for c in schema.categorical:
            vocab = pre.vocab_[c]
            ref_idx, cur_idx = (_vocab_index(s.frame[c], vocab) for s in (reference, current))
            rows.append(_row(c, "categorical", categorical_psi(ref_idx, cur_idx, len(vocab), b), b + 1, n_ref, n_cur, b))
            unknown[c] = {"reference": float((ref_idx == len(vocab)).mean()),
                          "current": float((cur_idx == len(vocab)).mean()), "vocabulary": len(vocab)}
        if len(reference.gaps) and len(current.gaps):
            g = usable_bins(len(reference.gaps), len(current.gaps), bins)
            rows.append(_row("time gap (log1p seconds)", "time", numeric_psi(reference.gaps, current.gaps, g), g,
                             len(reference.gaps), len(current.gaps), g))
        g = usable_bins(len(reference.lengths), len(current.lengths), bins)
        lengths = {"psi": numeric_psi(reference.lengths, current.lengths, g), "bins": g,
                   "noise": noise_level(g, len(reference.lengths), len(current.lengths)), "max_len": encoder.max_len_}
        lengths["flag"] = flag(lengths["psi"])
        for name, side in (("reference", reference), ("current", current)):
            L = side.lengths
            lengths[name] = {"entities": int(len(L)), "mean": float(L.mean()), "median": float(np.median(L)),
                             "p95": float(np.percentile(L, 95)), "over_max_len": float((L > encoder.max_len_).mean()),
                             "span_days": side.span_s / 86400}
    for r in rows:
        r["flag"] = flag(r["psi"])
    rows.sort(key=lambda r: -r["psi"])
    return {"encoder_id": encoder.encoder_id, "reference": reference.source, "current": current.source,
            "rows": {"reference": int(len(reference.codes)), "current": int(len(current.codes))},
            "bins": bins, "thresholds": {"moderate": MODERATE, "major": MAJOR},
            "max_psi": rows[0]["psi"], "max_psi_name": rows[0]["name"],
            "flagged": [r["name"] for r in rows if r["psi"] >= MODERATE],
            "features": rows, "unknown_share": unknown, "lengths": lengths}


def _vocab_index(values: pd.Series, vocab: list[str]) -> np.ndarray:
    """Position of each value in ``vocab``; ``len(vocab)`` for a value not in it (the preprocessing's
    ``lookup``, on each distinct value once)."""
    codes, distinct = factorize_categories(values)
    idx = lookup(distinct, vocab_positions(vocab))[codes] - 2  # lookup: 2 + rank, or UNKNOWN (1)
    return np.where(idx < 0, len(vocab), idx)


def drift_markdown(m: dict) -> str:
    lines = [f"# Drift: {m['current']} against {m['reference']}", "",
             f"Encoder `{m['encoder_id'][:12]}`; {m['rows']['reference']} reference rows, {m['rows']['current']} "
             f"current rows; PSI over up to {m['bins']} quantile bins of the reference, fewer where a bin would "
             f"hold under {ROWS_PER_BIN} rows (categories: the encoder's vocabulary by frequency rank, plus one bin "
             f"for values it does not know). Flags: moderate >= {MODERATE}, major >= {MAJOR}. 'No-drift level': "
             "the PSI two samples of one population of these sizes show on average; a PSI near it is noise.",
             "", f"Largest PSI: **{m['max_psi']:.3f}** ({m['max_psi_name']}). "
             f"Flagged: {', '.join(m['flagged']) or 'none'}.", "",
             "| feature | kind | PSI | flag | bins | no-drift level |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['name']} | {r['kind']} | {r['psi']:.4f} | {r['flag']} | {r['bins']} | {r['noise']:.4f} |"
              for r in m["features"]]
    if m["unknown_share"]:
        lines += ["", "## Categories the encoder does not know", "",
                  "| column | vocabulary | share unknown, reference | share unknown, current |", "|---|---|---|---|"]
        lines += [f"| {c} | {u['vocabulary']} | {u['reference']:.3f} | {u['current']:.3f} |"
                  for c, u in m["unknown_share"].items()]
    if m["lengths"]:
        L = m["lengths"]
        lines += ["", "## Sequence length (events per entity)", "",
                  "| file | entities | mean | median | p95 | share over max_len |", "|---|---|---|---|---|---|"]
        lines += [f"| {k} | {L[k]['entities']} | {L[k]['mean']:.1f} | {L[k]['median']:.0f} | {L[k]['p95']:.0f} | "
                  f"{L[k]['over_max_len']:.3f} |" for k in ("reference", "current")]
        lines += ["", f"max_len is {L['max_len']}; PSI of the lengths {L['psi']:.3f} ({L['flag']}; no-drift level "
                  f"{L['noise']:.3f}). The files span "
                  f"{L['reference']['span_days']:.1f} and {L['current']['span_days']:.1f} days: a shorter file alone "
                  "holds fewer events per entity, so the lengths are reported here and left out of the table above "
                  "and of --fail-above."]
    lines += ["", "Codes of an event table are computed from that file alone: an entity's events before the file "
              "are not seen, and event codes also carry how much history an entity has, so a young or a cut "
              "population moves some latent dimensions by itself. Latent files written with the full history "
              "(the scoring job's) compare codes as production sees them."]
    return "\n".join(lines) + "\n"


def plot_drift(m: dict, path: Path, top: int = 30) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = m["features"][:top][::-1]
    colors = {"major": "#c0392b", "moderate": "#e67e22", "stable": "#7f8c8d"}
    fig, ax = plt.subplots(figsize=(7, 0.25 * len(rows) + 1.5))
    ax.barh([r["name"] for r in rows], [r["psi"] for r in rows], color=[colors[r["flag"]] for r in rows])
    for x, style in ((MODERATE, ":"), (MAJOR, "--")):
        ax.axvline(x, color="black", linestyle=style, linewidth=1)
    ax.set_xlabel("PSI (reference quantile bins)")
    ax.set_title(f"Drift, largest {len(rows)} of {len(m['features'])}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_drift_report(m: dict, out: str | Path, overwrite: bool = False) -> Path:
    """``drift.md``, ``drift.png`` and ``metrics.json`` in ``out`` (atomically)."""
    from encoder.io.artifacts import write_json
    from encoder.io.atomic import atomic_output
    with atomic_output(out, overwrite, directory=True) as tmp:
        (tmp / "drift.md").write_text(drift_markdown(m))
        plot_drift(m, tmp / "drift.png")
        write_json(tmp / "metrics.json", m)
    return Path(out)

