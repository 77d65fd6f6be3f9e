"""The ``seqae`` command: one root group holding the encoder, classifier and pipeline groups."""
from __future__ import annotations

import gc
import os
from pathlib import Path

import click

from classifier.cli import classifier_group
from encoder.cli import encoder_group
from encoder.config import UNITS, read_config_file
from encoder.io.atomic import atomic_output, check_output
from encoder.io.clitools import SeqaeGroup, check_cluster, engine_options, names_option, overwrite_option

DEMO_ACCOUNTS = 1500


@click.group(cls=SeqaeGroup)
@click.option("--verbose", is_flag=True, help="Show the full traceback of an error.")
@click.version_option(package_name="seqae")
@click.pass_context
def main(ctx, verbose):
    """seqae: LSTM autoencoder codes for event sequences, XGBoost on top, compared honestly."""
    ctx.obj = {"verbose": verbose}


@click.group("pipeline")
def pipeline_group():
    """Compare codes with raw-feature baselines, run scoring jobs, run the demo."""


# Without --config, per-event training in a comparison keeps to a budget: windows of at most 32
# events, at most 12 epochs of 5,000 windows, patience 3 (about 1.5 minutes on 2 cores, whatever
# the table's size; with 20,000-window epochs the validation loss moved little and unevenly after
# 80,000 windows on the demo simulator, and the five demo seeds lost nothing measurable with the
# shorter training: docs/benchmarks.md). Named here, shown in --help, recorded in metrics.json.
EVENT_PRESET = {"max_len_cap": 32, "epochs": 12, "max_sequences_per_epoch": 5000, "patience": 3}
PRESET_HELP = ("Without --config, --unit event trains with the preset " +
               ", ".join(f"{k}={v}" for k, v in EVENT_PRESET.items()) + " (recorded in metrics.json).")


def pipeline_config(config_path, unit, max_len, epochs, latent_dim):
    """Encoder options for a pipeline and the preset applied: the file's options, or without a file
    for the event unit ``EVENT_PRESET``; then the command line's. Returns ``(config, preset)``."""
    cfg, _ = read_config_file(config_path)
    given = {"epochs": epochs}  # the command line wins over the preset
    preset = {k: v for k, v in EVENT_PRESET.items() if given.get(k) is None} \
        if config_path is None and (unit or "event") == "event" else {}
    cfg = cfg.replace(**preset)
    return cfg.replace(max_len=max_len, epochs=epochs, latent_dim=latent_dim), preset


def _check_delay(value):
    """``--label-delay`` as given, once it parses (``splits.parse_delay``); else a usage error."""
    if value is not None:
        from encoder.io.errors import InputError
        from pipelines.evaluation.splits import parse_delay
        try:
            parse_delay(value)
        except InputError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


@pipeline_group.command("compare")
@click.argument("events", type=click.Path())
@click.option("--id", "id_col", required=True, help="Entity key column.")
@click.option("--time", "time_col", required=True, help="Event time column.")
@click.option("--label", "label_col", required=True, help="Label column (per event, or constant per entity).")
@click.option("--test", "test_events", type=click.Path(), help="External test table (else the latest period).")
@click.option("--out", required=True, type=click.Path(), help="Report directory to write.")
@click.option("--unit", type=click.Choice(UNITS), default="event", show_default=True)
@click.option("--train-frac", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.6, show_default=True,
              help="Share of the time range (by events) in the train period.")
@click.option("--valid-frac", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.2, show_default=True,
              help="Share in the validation period; the rest is the test period.")
@click.option("--train-end", help="Cut-off time ending the train period (instead of fractions).")
@click.option("--valid-end", help="Cut-off time ending the validation period.")
@click.option("--max-len", type=click.IntRange(min=1), help="Events per sequence.")
@click.option("--epochs", type=click.IntRange(min=1), help="Maximum encoder epochs.")
@click.option("--latent-dim", type=click.IntRange(min=1), help="Size of the latent code.")
@click.option("--config", "config_path", type=click.Path(), help="TOML file of encoder options. " + PRESET_HELP)
@click.option("--search", type=click.IntRange(min=1), default=1, show_default=True,
              help="Tree candidates per model, the same for every model (below 5000 rows the linear booster too).")
@click.option("--bootstrap", "n_boot", type=click.IntRange(min=10), default=200, show_default=True,
              help="Bootstrap resamples of entities for the intervals.")
@click.option("--select", type=click.IntRange(min=1), metavar="K",
              help="Also fit aggregates and hybrid_joint on their K most useful features (chosen on the training rows) "
                   "and report whether it helped.")
@click.option("--variants", is_flag=True, help="Also fit the variants of hybrid: hybrid_joint (one model of its columns), "
              "hybrid_recon (plus the reconstruction error, which needs a window per event: slower) and, for event "
              "codes, hybrid_full (every code channel).")
@click.option("--label-delay", callback=lambda ctx, param, value: _check_delay(value), help="Labels arrive this late (30d, 12h, or a number in the time column's units): "
                                    "the classifiers learn only from labels known when the test period starts.")
@click.option("--alert-budget", type=click.FloatRange(0, 1, min_open=True), default=0.01, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@names_option("--numeric", "Columns to treat as numeric")
@names_option("--categorical", "Columns to treat as categorical")
@names_option("--drop", "Columns to ignore")
@click.option("--verbose", is_flag=True, help="Also print the seconds of each stage (reading, training, codes, "
              "baseline features, each classifier, evaluation).")
@overwrite_option
def compare(events, id_col, time_col, label_col, test_events, out, unit, train_frac, valid_frac, train_end,
            valid_end, max_len, epochs, latent_dim, config_path, search, n_boot, select, variants, label_delay,
            alert_budget, seed, numeric, categorical, drop, verbose, overwrite):
    """Compare latent codes with raw-feature baselines on EVENTS and write a report to --out."""
    from pipelines.evaluation.compare import run_compare
    from pipelines.evaluation.report import (
        control_verdicts,
        render_table,
        selection_lines,
        stage_lines,
        verdict,
        write_report,
    )
    check_output(out, overwrite)
    cfg, preset = pipeline_config(config_path, unit, max_len, epochs, latent_dim)
    result = run_compare(events, id_col, time_col, label_col, test_events, config=cfg, unit=unit, preset=preset,
                         train_frac=train_frac, valid_frac=valid_frac, train_end=train_end, valid_end=valid_end,
                         search=search, n_boot=n_boot, alert_budget=alert_budget, seed=seed,
                         numeric=numeric, categorical=categorical, drop=drop, label_delay=label_delay,
                         select=select, variants=variants, on_stage=_echo_stage if verbose else None)
    if result.metrics["label_delay"]:
        gap = result.metrics["label_delay"]
        click.echo(f"label delay {label_delay}: classifiers trained on labels up to {gap['labels_until']}; "
                   f"test from {gap['test_from']} ({gap['rows_in_gap']} rows in the gap)")
    write_report(result, out, overwrite=overwrite)
    click.echo(render_table(result.metrics))
    click.echo("\n" + verdict(result.metrics))
    click.echo("\n".join(control_verdicts(result.metrics)))
    if select:
        click.echo("\n".join(selection_lines(result.metrics)).rstrip())
    if verbose:
        click.echo("\n" + stage_lines(result.metrics["stage_seconds"]))
    click.echo(f"\nreport written to {Path(out) / 'report.md'}")


def _echo_stage(name: str, seconds: float) -> None:
    click.echo(f"stage {name}: {seconds:.1f} s", err=True)


@pipeline_group.command("score")
@click.option("--encoder", "encoder_dir", required=True, type=click.Path(), help="Encoder directory.")
@click.option("--classifier", "classifier_dir", required=True, type=click.Path(), help="Classifier directory.")
@click.argument("events", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="Scores parquet to write.")
@click.option("--batch-size", type=click.IntRange(min=1), default=4096, show_default=True)
@click.option("--threshold", type=float, help="Override the classifier's decision threshold.")
@click.option("--bucket-rows", type=click.IntRange(min=1),
              help="Above this many events a Parquet input is read and scored one bucket of entities at a time, "
                   "so memory follows the bucket; rows then come bucket by bucket [1000000].")
@engine_options
@overwrite_option
def score(encoder_dir, classifier_dir, events, out, batch_size, threshold, bucket_rows, engine, scheduler, workers,
          partitions, overwrite):
    """Score EVENTS with a trained encoder and classifier, streaming, to a parquet file (with
    --engine dask: a directory of Parquet files, one per partition)."""
    if engine == "dask":
        from pipelines.scoring.dask_batch import score_dask
        check_cluster(scheduler, workers)
        rows, files = score_dask(encoder_dir, classifier_dir, events, out, batch_size, overwrite, threshold,
                                 scheduler, workers, partitions)
        click.echo(f"{rows} scores written to {out} ({files} Parquet files)")
        return
    from pipelines.scoring.batch import BUCKET_ROWS, score_events
    rows = score_events(encoder_dir, classifier_dir, events, out, batch_size, overwrite, threshold,
                        bucket_rows=bucket_rows or BUCKET_ROWS)
    click.echo(f"{rows} scores written to {out}")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    import ipaddress
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_token(path) -> str | None:
    """The bearer token in ``path`` (surrounding whitespace removed), refused when empty."""
    if path is None:
        return None
    from encoder.io.errors import InputError
    try:
        token = Path(path).read_text().strip()
    except OSError as exc:
        raise InputError(f"token file '{path}' cannot be read: {exc.strerror}") from None
    if not token:
        raise InputError(f"token file '{path}' is empty")
    return token


@pipeline_group.command("serve")
@click.option("--encoder", "encoder_dir", required=True, type=click.Path(), help="Encoder directory (unit event).")
@click.option("--classifier", "classifier_dir", required=True, type=click.Path(), help="Classifier directory.")
@click.option("--state", default="seqae-state.sqlite", show_default=True,
              help="Per-entity state: an SQLite file (kept across restarts) or a redis:// URL.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--ttl", type=click.FloatRange(min=0, min_open=True), help="Forget entities idle this many seconds.")
@click.option("--allow-late", is_flag=True, help="Score an event earlier than its entity's latest instead of 409.")
@click.option("--max-batch", type=click.IntRange(min=1), default=10000, show_default=True,
              help="Most events in one request (more: 413).")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="CPU threads of the encoder step and the classifier. One event's work is too small to share; "
                   "more threads contend with the HTTP loop and raise the tail latency.")
@click.option("--workers", type=click.IntRange(min=1), default=min(2, os.cpu_count() or 1),
              show_default="2, or 1 on one core",
              help="Processes that score, each with its own models and state-store connection (--threads each): "
                   "concurrent requests use every core and /health answers at once during large batches. "
                   "1: threads of the service's own process.")
@click.option("--event-id", help="Column that identifies an event, so a retried event is answered from what was "
                                 "stored and changes no state [a digest of the event's columns].")
@click.option("--token-file", type=click.Path(dir_okay=False),
              help="File holding a bearer token every request but /health must carry (Authorization: Bearer "
                   "<token>); required when --host is not a loopback address.")
def serve(encoder_dir, classifier_dir, state, host, port, ttl, allow_late, max_batch, threads, workers, event_id,
          token_file):
    """Serve online scoring over HTTP: POST /score, GET /health, GET /entities/{id}.

    Each new event costs one encoder step from its entity's stored state; scores equal those of
    `pipeline score` on the same events."""
    from pipelines.scoring.online import OnlineScorer
    from pipelines.scoring.serve import create_app
    try:
        import uvicorn
    except ImportError:
        raise click.UsageError("pipeline serve needs fastapi and uvicorn: pip install 'seqae[serve]'") from None
    token = read_token(token_file)
    if token is None and not is_loopback(host):
        raise click.UsageError(f"--host {host} is reachable from other machines: give --token-file")
    options = {"allow_late": allow_late, "ttl": ttl, "max_batch": max_batch, "event_id": event_id}
    scorer = OnlineScorer(encoder_dir, classifier_dir, state, **options)
    scorer.use_threads(threads)
    pool = None
    if workers > 1:
        from pipelines.scoring.workers import ScoringPool
        pool = ScoringPool(encoder_dir, classifier_dir, state, workers, threads, **options)
    gc.collect()
    gc.freeze()  # the models and libraries, loaded once, leave the collector's scans: steadier tail latency
    click.echo(f"serving encoder {scorer.encoder_id[:12]} + classifier {scorer.classifier_id[:12]} on "
               f"http://{host}:{port} (state: {state}; {workers} scoring process{'es' if workers > 1 else ''})",
               err=True)
    try:
        uvicorn.run(create_app(scorer, token, pool), host=host, port=port, log_level="warning")
    finally:
        if pool is not None:
            pool.close()


@pipeline_group.command("replay")
@click.argument("events", type=click.Path())
@click.option("--url", required=True, help="The service, e.g. http://127.0.0.1:8000.")
@click.option("--time", "time_col", required=True, help="Event time column (events are sent in time order).")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True, help="Events per request.")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), help="Most events per second [as fast as answered].")
@click.option("--limit", type=click.IntRange(min=1), help="Send only the first N events (in time order).")
@click.option("--out", type=click.Path(), help="Write the service's answers to this parquet file.")
@overwrite_option
def replay(events, url, time_col, batch, rate, limit, out, overwrite):
    """Stream EVENTS to a running service and report latency percentiles and throughput."""
    from pipelines.scoring.replay import replay as run_replay
    from pipelines.scoring.replay import write_results
    if out:
        check_output(out, overwrite)
    results, s = run_replay(events, url, time_col, batch, rate, limit)
    click.echo(f"{s['events']} events in {s['requests']} requests, {s['seconds']:.1f} s: {s['events_per_s']:.0f} events/s; "
               f"latency per request p50 {s['p50_ms']:.1f} ms, p90 {s['p90_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms, "
               f"max {s['max_ms']:.1f} ms; rejected {s['rejected']}" + (f" (first: {s['first_error']})" if s["rejected"] else ""))
    if out:
        write_results(results, Path(out), overwrite)
    if s["rejected"]:
        from encoder.io.errors import InputError
        raise InputError(f"{s['rejected']} of {s['requests']} requests were rejected (first: {s['first_error']})")


@pipeline_group.command("demo")
@click.option("--out", default="demo_out", show_default=True, type=click.Path(), help="Directory to write.")
@click.option("--accounts", type=click.IntRange(min=50), default=DEMO_ACCOUNTS, show_default=True,
              help="Simulated accounts (about 60 events each).")
@click.option("--days", type=click.IntRange(min=14), default=56, show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), help="Maximum encoder epochs.")
@click.option("--bootstrap", "n_boot", type=click.IntRange(min=10), default=200, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@overwrite_option
def demo(out, accounts, days, epochs, n_boot, seed, overwrite):
    """Simulate card transactions, compare codes with baselines, and run a scoring job.

    Writes OUT/events.parquet, OUT/report/ (report.md, metrics.json, plots, models) and
    OUT/scores.parquet (the hybrid model over every event), then prints the comparison.
    """
    from pipelines.evaluation.compare import run_compare
    from pipelines.evaluation.report import control_verdicts, render_table, verdict, write_report
    from pipelines.scoring.batch import score_events
    from pipelines.simulate.demo import simulate_events
    check_output(out, overwrite)
    cfg, preset = pipeline_config(None, "event", None, epochs, None)
    with atomic_output(out, overwrite, directory=True) as tmp:
        click.echo(f"simulating {accounts} accounts over {days} days ...", err=True)
        simulate_events(accounts, days, seed).to_parquet(tmp / "events.parquet", index=False)
        click.echo("comparing codes with baselines (encoder training takes a minute or two) ...", err=True)
        result = run_compare(tmp / "events.parquet", "account", "ts", "is_fraud", config=cfg, unit="event", preset=preset,
                             n_boot=n_boot, seed=seed)
        write_report(result, tmp / "report")
        click.echo("scoring every event with the hybrid model ...", err=True)
        score_events(tmp / "report/models/encoder", tmp / "report/models/hybrid", tmp / "events.parquet",
                     tmp / "scores.parquet")
    click.echo(render_table(result.metrics))
    click.echo("\n" + verdict(result.metrics))
    click.echo("\n".join(control_verdicts(result.metrics)))
    click.echo(f"\nreport: {Path(out) / 'report' / 'report.md'}\nscores: {Path(out) / 'scores.parquet'}")


main.add_command(encoder_group)
main.add_command(classifier_group)
main.add_command(pipeline_group)
