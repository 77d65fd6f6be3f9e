"""``seqae encoder``: train an autoencoder, encode events to latent parquet, inspect an encoder."""
from __future__ import annotations

import json
from pathlib import Path

import click

from encoder.config import ENCODE_BATCH, UNITS, EncoderConfig, read_config_file
from encoder.io.artifacts import read_encoder_manifest
from encoder.io.atomic import check_output
from encoder.io.clitools import check_cluster, engine_options, names_option, overwrite_option


def _as_tuple(value) -> tuple:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


@click.group("encoder")
def encoder_group():
    """Train the sequence autoencoder and turn event tables into latent codes."""


@encoder_group.command("train")
@click.argument("events", type=click.Path())
@click.option("--id", "id_col", help="Entity key column (account, card, machine, series).")
@click.option("--time", "time_col", help="Event time column (timestamp or number).")
@click.option("--label", "label_col", help="Target column: never a feature; carried into the latents.")
@click.option("--unit", type=click.Choice(UNITS), help="One sequence per entity or per event [entity].")
@click.option("--max-len", type=click.IntRange(min=1), help="Events per sequence [entity: the longest, at most 4096; event: the 95th percentile].")
@click.option("--latent-dim", type=click.IntRange(min=1), help="Size of the learned code [32]; entity codes then add 10 summary statistics per numeric column (summary_stats), and the convolution branch's conv_dim channels where set.")
@click.option("--epochs", type=click.IntRange(min=0),
              help="Maximum training epochs [200; early stopping]. 0 writes an untrained control: everything "
                   "fitted without gradients, the network at its seeded initialisation.")
@click.option("--batch-size", type=click.IntRange(min=1), help="Training batch size [64].")
@click.option("--seed", type=int, help="Random seed: same seed, same machine, same weights [0].")
@click.option("--config", "config_path", type=click.Path(), help="TOML file with any of these options.")
@names_option("--numeric", "Columns to treat as numeric")
@names_option("--categorical", "Columns to treat as categorical")
@names_option("--drop", "Columns to ignore")
@click.option("--out", required=True, type=click.Path(), help="Encoder directory to write.")
@click.option("--resume", is_flag=True, help="Continue an interrupted run from OUT.partial/checkpoint.pt.")
@click.option("--distributed", is_flag=True,
              help="Data-parallel training under torchrun (gloo): each process trains on its share of every "
                   "batch, gradients are summed, process 0 writes --out.")
@overwrite_option
def train(events, id_col, time_col, label_col, unit, max_len, latent_dim, epochs, batch_size, seed,
          config_path, numeric, categorical, drop, out, resume, distributed, overwrite):
    """Train an encoder on EVENTS (Parquet file or directory, or CSV) and write it to --out."""
    if distributed:
        if resume:
            raise click.UsageError("--resume does not apply with --distributed")
        from encoder.training.distributed import init_from_env
        init_from_env()
        try:
            return _train(events, id_col, time_col, label_col, unit, max_len, latent_dim, epochs, batch_size,
                          seed, config_path, numeric, categorical, drop, out, False, overwrite)
        finally:
            import torch.distributed as dist
            dist.destroy_process_group()
    _train(events, id_col, time_col, label_col, unit, max_len, latent_dim, epochs, batch_size, seed,
           config_path, numeric, categorical, drop, out, resume, overwrite)


def _train(events, id_col, time_col, label_col, unit, max_len, latent_dim, epochs, batch_size, seed,
           config_path, numeric, categorical, drop, out, resume, overwrite):
    from encoder.estimator import SequenceEncoder
    from encoder.sequences import window_note
    from encoder.training.distributed import rank_and_world
    cfg, columns = read_config_file(config_path)
    cfg = cfg.replace(unit=unit, max_len=max_len, latent_dim=latent_dim, epochs=epochs,
                      batch_size=batch_size, seed=seed)
    id_col = id_col or columns.get("id")
    time_col = time_col or columns.get("time")
    if not id_col or not time_col:
        raise click.UsageError("Missing option '--id' and/or '--time' (on the command line or in --config).")
    out = check_output(out, overwrite)
    enc = SequenceEncoder(id_col, time_col, label_col or columns.get("label"), cfg,
                          numeric=numeric or _as_tuple(columns.get("numeric")),
                          categorical=categorical or _as_tuple(columns.get("categorical")),
                          drop=drop or _as_tuple(columns.get("drop")))
    if rank_and_world()[0] > 0:  # torchrun: process 0 keeps checkpoints and writes the encoder
        enc.fit(events)
        return
    partial = out.with_name(out.name + ".partial")
    if not resume and partial.exists():
        for f in partial.iterdir():
            f.unlink()
    partial.mkdir(exist_ok=True)
    try:
        enc.fit(events, checkpoint=partial / "checkpoint.pt", resume=resume)
        enc.save(out, overwrite=overwrite)
    except Exception:
        if not any(partial.iterdir()):  # nothing to resume from: leave no trace
            partial.rmdir()
        raise
    for f in partial.iterdir():
        f.unlink()
    partial.rmdir()
    t = enc.training_
    trained = ("untrained (0 epochs: the network at its seeded initialisation, a control)" if enc.untrained_ else
               f"{t['epochs_run']} epochs, best validation loss {t['best_val_loss']:.4f} at epoch {t['best_epoch']}")
    click.echo(f"encoder {enc.encoder_id[:12]} written to {out}: {trained}, max_len {enc.max_len_}"
               f"{f', {enc.config_.data.patch} events per LSTM step' if enc.config_.data.patch > 1 else ''}")
    note = None if enc.config_.network.causal else window_note(t["truncation"])  # causal codes read whole histories
    if note:
        click.echo(f"note: {note}")
    if t["segments"]:
        click.echo(f"note: {segments_note(t['segments'], enc.model_config_)}")


def segments_note(rule: dict, mc) -> str:
    """One line on the provisional segment maxima: kept or dropped, and the share that decided it."""
    share, least = rule["share"], rule["min_share"]
    if rule["kept"]:
        return (f"segment maxima kept: the part of a sequence explains {share:.2f} of their variance "
                f"(at least {least}), so the code says in which of {mc.segments} parts each channel peaks "
                f"({mc.segment_dim} channels)")
    return (f"segment maxima dropped: the part of a sequence explains {share:.2f} of their variance "
            f"(under {least}); shapes move along these sequences")


@encoder_group.command("encode")
@click.argument("encoder_dir", type=click.Path())
@click.argument("events", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="Latent parquet file to write.")
@click.option("--unit", type=click.Choice(UNITS), help="Override the unit the encoder was trained with.")
@click.option("--batch-size", type=click.IntRange(min=1), default=ENCODE_BATCH, show_default=True,
              help="Sequences encoded at once (memory is bounded by it).")
@click.option("--blocks", help="Code blocks to write, comma-separated (pooled, conv, segments, surprise, summary, "
                               "kernels; 'learned', 'untrained'; '-kernels' drops one) [all]. Columns keep their "
                               "z_* names; `seqae encoder inspect` lists the blocks.")
@engine_options
@overwrite_option
def encode(encoder_dir, events, out, unit, batch_size, blocks, engine, scheduler, workers, partitions, overwrite):
    """Write the latent codes of EVENTS under ENCODER_DIR's encoder to a parquet file (with
    --engine dask: a directory of Parquet files, one per partition)."""
    if engine == "dask":
        if blocks is not None:
            raise click.UsageError("--blocks does not apply with --engine dask")
        from encoder.dask_encode import encode_dask
        check_cluster(scheduler, workers)
        rows, files = encode_dask(encoder_dir, events, out, unit, batch_size, overwrite, scheduler, workers, partitions)
        click.echo(f"{rows} latent rows written to {out} ({files} Parquet files)")
        return
    from encoder.estimator import SequenceEncoder
    enc = SequenceEncoder.load(encoder_dir)
    rows = enc.encode_to_parquet(events, out, unit=unit, batch_size=batch_size, overwrite=overwrite, blocks=blocks)
    click.echo(f"{rows} latent rows ({unit or enc.config_.data.unit}) written to {out}")


@encoder_group.command("untrained")
@click.argument("encoder_dir", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="Encoder directory to write.")
@overwrite_option
def untrained(encoder_dir, out, overwrite):
    """Write the untrained twin of ENCODER_DIR: its control. Everything fitted without gradients
    (preprocessing, vocabularies, segment decision, random-kernel channels and biases) is kept;
    the network's weights are the seeded initialisation its training started from. Its codes
    differ from ENCODER_DIR's in the trained blocks only."""
    from encoder.estimator import SequenceEncoder
    check_output(out, overwrite)
    enc = SequenceEncoder.load(encoder_dir)
    twin = enc.untrained_twin()
    twin.save(out, overwrite=overwrite)
    click.echo(f"untrained twin {twin.encoder_id[:12]} of encoder {enc.encoder_id[:12]} written to {out}")


@encoder_group.command("inspect")
@click.argument("encoder_dir", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the raw manifest as JSON.")
def inspect(encoder_dir, as_json):
    """Print what ENCODER_DIR holds: schema, preprocessing, architecture, training, versions."""
    m = read_encoder_manifest(encoder_dir)  # format and weights' sha256 checked, no torch needed
    if as_json:
        click.echo(json.dumps(m, indent=2))
        return
    s, t, mc = m["schema"], m["training"], m["model_config"]
    lines = [
        f"encoder_id   {m['encoder_id']}",
        f"created      {m['created']}   format {m['format_version']}",
        f"keys         id={s['id_col']}  time={s['time_col']}  label={s['label_col']}",
        f"unit         {m['unit']}   max_len {m['max_len']}   code width {m.get('code_width', m.get('latent_dim'))}",
        f"numeric      {', '.join(s['numeric']) or '-'}",
        "categorical  " + (", ".join(f"{c} ({len(v)} values)" for c, v in m["preprocessing"]["vocab"].items()) or "-"),
        f"channels     {len(m['numeric_channels'])} numeric, embeddings {list(mc['embedding_dims'])}",
        f"model        LSTM {mc['num_layers']}x{mc['hidden_size']}{' bidirectional' if mc['bidirectional'] else ''}, "
        f"pooling {'+'.join(mc['pooling'])}",
        f"segments     {mc.get('segments', 0)} parts" + (
            f" (position share {t['segments']['share']:.2f}, {'kept at' if t['segments']['kept'] else 'dropped under'} "
            f"{t['segments']['min_share']})" if t.get("segments") else ""),
        "training     " + ("untrained: the network at its seeded initialisation (a control)"
                           + (f", twin of {t['twin_of'][:12]}" if t.get("twin_of") else "") if t.get("untrained") else
                           f"{t['epochs_run']} epochs, best val loss {t['best_val_loss']:.5f} at epoch {t['best_epoch']}")
        + f", {t['n_entities']} entities ({t['n_val_entities']} validation), {t['n_events']} events, {t['seconds']} s",
        "blocks       " + ", ".join(f"{name} {b['width']}{'' if b['trained'] else ' (untrained)'}"
                                    for name, b in m.get("code_blocks", {}).items() if b["width"]),
        *([("preset       " + ", ".join(f"{k}={v}" for k, v in m["preset"].items()))] if m.get("preset") else []),
        "versions     " + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
    ]
    parts = EncoderConfig.from_dict(m["config"], source=f"manifest of '{encoder_dir}'").to_dict()
    lines += [f"{'cfg.' + part:<13}" + ", ".join(f"{k}={v}" for k, v in options.items())
              for part, options in parts.items()]
    click.echo("\n".join(lines))


@encoder_group.command("export")
@click.argument("encoder_dir", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["onnx"]), default="onnx", show_default=True,
              help="Format of the network.")
@click.option("--out", required=True, type=click.Path(),
              help="Directory to write: encoder.onnx and preprocessing.json.")
@overwrite_option
def export(encoder_dir, fmt, out, overwrite):
    """Export ENCODER_DIR's network for another runtime: ONNX with dynamic batch and steps (padded
    inputs + lengths -> codes, encoder_id in its metadata), beside preprocessing.json, the
    scalers, vocabularies and rules that turn raw events into its inputs."""
    from encoder.estimator import SequenceEncoder
    from encoder.export import ONNX_FILE, SPEC_FILE, export_onnx
    check_output(out, overwrite)
    enc = SequenceEncoder.load(encoder_dir)
    export_onnx(enc, out, overwrite)
    click.echo(f"encoder {enc.encoder_id[:12]} exported to {Path(out) / ONNX_FILE} with {SPEC_FILE}")


@encoder_group.command("drift")
@click.argument("encoder_dir", type=click.Path())
@click.argument("reference", type=click.Path())
@click.argument("current", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="Report directory: drift.md, drift.png, metrics.json.")
@click.option("--bins", type=click.IntRange(min=2), default=10, show_default=True,
              help="Quantile bins of the reference for numeric values and latent dimensions.")
@click.option("--fail-above", type=click.FloatRange(min=0), metavar="PSI",
              help="Exit with status 3 (after writing the report) when any PSI exceeds this.")
@overwrite_option
def drift(encoder_dir, reference, current, out, bins, fail_above, overwrite):
    """Population stability of CURRENT against REFERENCE (event tables or latent parquet files of
    this encoder): PSI per latent dimension and per input feature, unknown categories, sequence
    lengths. Exit 0 with the report, or 3 with --fail-above when drift exceeds it."""
    from encoder.drift import drift_metrics, read_side, write_drift_report
    from encoder.estimator import SequenceEncoder
    check_output(out, overwrite)
    enc = SequenceEncoder.load(encoder_dir)
    m = drift_metrics(enc, read_side(enc, reference), read_side(enc, current), bins)
    write_drift_report(m, out, overwrite)
    click.echo(f"drift report written to {out}: largest PSI {m['max_psi']:.3f} ({m['max_psi_name']}); "
               f"flagged: {', '.join(m['flagged']) or 'none'}")
    if fail_above is not None and m["max_psi"] > fail_above:
        click.echo(f"drift: PSI {m['max_psi']:.3f} of '{m['max_psi_name']}' is above --fail-above {fail_above}", err=True)
        click.get_current_context().exit(3)
