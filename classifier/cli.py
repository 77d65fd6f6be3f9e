"""``seqae classifier``: train XGBoost on latent codes, predict, evaluate."""
from __future__ import annotations

from pathlib import Path

import click

from classifier.thresholds import DEFAULT_BUDGET, parse_policy
from encoder.io.artifacts import write_json
from encoder.io.atomic import atomic_output, check_output
from encoder.io.clitools import check_cluster, engine_options, overwrite_option

features_option = click.option("--features", "features_path", type=click.Path(),
                               help="Parquet file of more feature columns, joined on the key columns.")


@click.group("classifier")
def classifier_group():
    """Train XGBoost on latent codes, predict with a threshold policy, evaluate."""


@classifier_group.command("train")
@click.argument("latents", type=click.Path())
@click.option("--label", required=True, help="Label column.")
@click.option("--out", required=True, type=click.Path(), help="Classifier directory to write.")
@features_option
@click.option("--policy", "policy", default="max_f1", show_default=True,
              help="Binary threshold policy: max_f1, precision:P, recall:R, fpr:F or budget:K.")
@click.option("--alert-budget", type=click.FloatRange(0, 1, min_open=True), default=DEFAULT_BUDGET,
              show_default=True, help="Share of rows an analyst reviews (precision at budget).")
@click.option("--positive", "positive_class", help="The positive class of a binary label.")
@click.option("--search", type=click.IntRange(min=1), default=1, show_default=True,
              help="Tree candidates tried on the validation split (below 5000 rows the linear booster is tried too).")
@click.option("--drop-unlabeled", is_flag=True, help="Skip rows whose label is missing.")
@click.option("--select", type=click.IntRange(min=1), metavar="K",
              help="Keep the K most useful features, chosen on the training rows only (XGBoost gain on an inner "
                   "split); recorded in the manifest.")
@click.option("--base-features", "base_features", multiple=True, metavar="COLS",
              help="A stacked model: a model of these columns first (comma-separated or repeated), then trees on "
                   "every column boosted from its margins, kept where they lower the validation log-loss: what "
                   "the other columns (the codes) add to these (e.g. your own --features).")
@click.option("--seed", type=int, default=0, show_default=True)
@engine_options
@overwrite_option
def train(latents, label, out, features_path, policy, alert_budget, positive_class, search, drop_unlabeled,
          select, base_features, seed, engine, scheduler, workers, partitions, overwrite):
    """Train a classifier on the z_* columns of LATENTS (plus --features) to predict --label.

    With --engine dask, LATENTS may be a partitioned dataset; xgboost.dask trains the default
    parameters with early stopping on the latest (or a random) share of rows."""
    if engine == "dask":
        for flag, given in (("--select", select), ("--base-features", base_features)):
            if given:
                raise click.BadParameter(f"{flag} does not apply with --engine dask", param_hint=flag)
        return _train_dask(latents, label, out, features_path, policy, alert_budget, positive_class, search,
                           drop_unlabeled, seed, scheduler, workers, partitions, overwrite)
    import pandas as pd

    from classifier.data import check_finite, labels_of, read_latents
    from classifier.estimator import LatentClassifier
    from encoder.events import split_names
    base = split_names(base_features) or None
    if base and select:
        raise click.BadParameter("cannot be combined with --select", param_hint="--base-features")
    check_output(out, overwrite)
    parse_policy(policy)
    table, y = labels_of(read_latents(latents, label, features_path), label, drop_unlabeled)
    if positive_class is not None and pd.api.types.is_integer_dtype(y):
        positive_class = int(positive_class)
    check_finite(table.frame, table.features, table.source)
    unknown = [c for c in base or () if c not in table.features]
    if unknown or (base and len(set(base)) == len(table.features)):
        problem = f"'{unknown[0]}' is not a feature column of '{table.source}'" if unknown else "names every feature column"
        raise click.BadParameter(problem, param_hint="--base-features")
    times = table.frame[table.time_col] if table.time_col else None
    clf = LatentClassifier(threshold_policy=policy, alert_budget=alert_budget, positive_class=positive_class,
                           search=search, seed=seed, select=select, base_features=base)
    clf.fit(table.frame[table.features], y, times=times, encoder_id=table.encoder_id)
    clf.save(out, overwrite=overwrite)
    _report(clf, out)


def _train_dask(latents, label, out, features_path, policy, alert_budget, positive_class, search, drop_unlabeled,
                seed, scheduler, workers, partitions, overwrite):
    from classifier.dask_training import fit_dask
    from classifier.estimator import LatentClassifier
    from encoder.dask_encode import dask_client
    for flag, given in (("--features", features_path), ("--positive", positive_class), ("--drop-unlabeled", drop_unlabeled),
                        ("--partitions", partitions), ("--search", search != 1)):
        if given:
            raise click.BadParameter(f"{flag} does not apply with --engine dask", param_hint=flag)
    check_cluster(scheduler, workers)
    check_output(out, overwrite)
    parse_policy(policy)
    clf = LatentClassifier(threshold_policy=policy, alert_budget=alert_budget, seed=seed)
    with dask_client(scheduler, workers) as client:
        fit_dask(clf, client, latents, label)
    clf.save(out, overwrite=overwrite)
    _report(clf, out)


def _report(clf, out) -> None:
    from classifier.params import NO_HOLDOUT
    v = clf.validation_
    shown = (f"PR-AUC {v['pr_auc']:.4f}, ROC-AUC {v['roc_auc']:.4f}, threshold {clf.threshold_:.4f} ({clf.policy_})"
             if len(clf.classes_) == 2 else f"accuracy {v['accuracy']:.4f}, macro-F1 {v['macro_f1']:.4f}")
    chosen = f" (selected from {len(clf.selection_['candidates'])})" if clf.selection_ else ""
    where = " (on the training rows: every class has a single row)" if clf.fit_info_.get("split") == NO_HOLDOUT else ""
    rounds = " + ".join(str(m.rounds) for m in clf.members_ if m.stage == 0)
    model = f"a blend of {len(clf.members_)} boosters, {rounds} rounds" if len(clf.members_) > 1 else f"{rounds} rounds"
    if "stacked" in clf.fit_info_:
        stacked = clf.fit_info_["stacked"]
        base = [m for m in clf.members_ if m.stage == 0]
        model = (f"{'a blend, ' if len(base) > 1 else ''}{rounds} rounds on {len(stacked['base_features'])} base "
                 f"features, then {stacked['stage_1_rounds']} rounds on all")
    click.echo(f"classifier written to {out}: {len(clf.features_)} features{chosen}, {model}; "
               f"validation {shown}{where}")


@classifier_group.command("predict")
@click.argument("classifier_dir", type=click.Path())
@click.argument("latents", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="Predictions parquet to write.")
@features_option
@click.option("--threshold", type=float, help="Override the stored decision threshold (binary).")
@click.option("--explain", type=click.IntRange(min=0), default=0, help="Add the N features that pushed each score most.")
@overwrite_option
def predict(classifier_dir, latents, out, features_path, threshold, explain, overwrite):
    """Score LATENTS with the classifier in CLASSIFIER_DIR."""
    from classifier.data import read_latents
    from classifier.estimator import LatentClassifier
    check_output(out, overwrite)
    clf = LatentClassifier.load(classifier_dir)
    table = read_latents(latents, None, features_path)
    clf.check_encoder(table, classifier_dir)
    frame = clf.predict_frame(table, threshold=threshold, explain=explain)
    with atomic_output(out, overwrite) as tmp:
        frame.to_parquet(tmp, index=False)
    click.echo(f"{len(frame)} predictions written to {out}")


@classifier_group.command("evaluate")
@click.argument("classifier_dir", type=click.Path())
@click.argument("latents", type=click.Path())
@click.option("--label", required=True, help="Label column.")
@click.option("--out", type=click.Path(), help="Write the metrics as JSON here, with PR and ROC curves beside it.")
@features_option
@click.option("--drop-unlabeled", is_flag=True, help="Skip rows whose label is missing.")
@overwrite_option
def evaluate(classifier_dir, latents, label, out, features_path, drop_unlabeled, overwrite):
    """Print (and optionally write) the metrics of the classifier on labelled LATENTS."""
    from classifier.data import labels_of, read_latents
    from classifier.estimator import LatentClassifier, label_indices
    from classifier.metrics import plot_curves
    if out:
        check_output(out, overwrite)
    clf = LatentClassifier.load(classifier_dir)
    table = read_latents(latents, label, features_path)
    clf.check_encoder(table, classifier_dir)
    table, y = labels_of(table, label, drop_unlabeled)
    X = table.frame[[c for c in table.features if c != label]]
    metrics = clf.evaluate(X, y)
    for k, v in metrics.items():
        if k == "reliability":
            click.echo("reliability            score bin     count  mean score  positive rate")
            for row in v:
                click.echo(f"{'':23s}{row['bin']:12s} {row['count']:7d}  {row['mean_score']:10.4f}  {row['positive_rate']:13.4f}")
        else:
            click.echo(f"{k:22s} {v:.4f}" if isinstance(v, float) else f"{k:22s} {v}")
    if out:
        with atomic_output(out, overwrite) as tmp:
            write_json(tmp, metrics)
        if len(clf.classes_) == 2 and 0 < metrics["positives"] < metrics["n"]:
            y_bin = label_indices(y, clf.classes_)  # 1 for the positive class
            score = clf.predict_proba(X)[:, 1]
            stem = Path(out).with_suffix("")
            plot_curves({"classifier": (y_bin, score)}, f"{stem}_pr.png", "pr")
            plot_curves({"classifier": (y_bin, score)}, f"{stem}_roc.png", "roc")
