"""The comparison report directory: report.md, metrics.json, predictions, plots and the fitted models."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from classifier.metrics import plot_curves
from encoder.io.artifacts import write_json
from encoder.io.atomic import atomic_output
from pipelines.evaluation.compare import CompareResult

LABELS = {"pr_auc": "PR-AUC", "roc_auc": "ROC-AUC", "recall_at_1pct_fpr": "recall @1% FPR",
          "precision_at_budget": "precision @budget", "accuracy": "accuracy", "macro_f1": "macro-F1"}
HEADLINE = {"binary": "pr_auc", "multiclass": "accuracy"}


def _metric_names(metrics: dict) -> list[str]:
    first = next(iter(metrics["models"].values()))
    return [k for k in LABELS if k in first]


def render_table(metrics: dict) -> str:
    """The comparison as a markdown table: one row per model, each metric with its 95% interval."""
    names = _metric_names(metrics)
    lines = ["| model | " + " | ".join(LABELS[k] for k in names) + " |",
             "|---|" + "---|" * len(names)]
    for model, m in metrics["models"].items():
        cells = [f"{m[k]:.3f} [{m[k + '_ci'][0]:.3f}, {m[k + '_ci'][1]:.3f}]" for k in names]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict(metrics: dict, a: str = "hybrid", b: str = "aggregates") -> str:
    """One sentence: the paired bootstrap difference of the headline metric and what it means."""
    key = HEADLINE[metrics.get("task", "binary")]
    pair = metrics["paired"].get(f"{a}_vs_{b}")
    if pair is None:
        return f"{a} vs {b}: not compared"
    d, (lo, hi) = pair[key]["diff"], pair[key]["ci"]
    head = f"{a} vs {b}: {d:+.3f} {LABELS[key]}, 95% interval [{lo:+.3f}, {hi:+.3f}]"
    if lo > 0:
        return head + " — the sequence codes add signal beyond the aggregates (the interval is above zero)."
    if hi < 0:
        return head + " — the codes make things worse here; keep the aggregates."
    return head + " — no clear difference (the interval includes zero); the simpler aggregates suffice."


CONTROL_TEXT = {  # (model, control): what each paired difference asks, and what each outcome means
    ("latent", "untrained"): ("Did training pay?",
                              "training added signal: the trained code beats its untrained twin",
                              "the trained code is worse than its untrained twin",
                              "training made no clear difference: an untrained network with the same features "
                              "does as well"),
    ("hybrid", "hybrid_untrained"): ("Did training pay beside the aggregates?",
                                     "the trained codes add more to the aggregates than untrained ones",
                                     "untrained codes add more to the aggregates than trained ones",
                                     "trained and untrained codes add the same to the aggregates"),
    ("latent", "minirocket"): ("Do the learned blocks beat the untrained features?",
                               "the learned code beats the random-kernel features and statistics alone",
                               "the random-kernel features and statistics alone beat the learned code",
                               "the learned code and the untrained features do equally well"),
}


def control_verdicts(metrics: dict) -> list[str]:
    """The controls' paired verdicts, one line each: did the trained weights earn their place?"""
    key = HEADLINE[metrics.get("task", "binary")]
    lines = []
    for (a, b), (question, better, worse, same) in CONTROL_TEXT.items():
        pair = metrics["paired"].get(f"{a}_vs_{b}")
        if pair is None:
            continue
        d, (lo, hi) = pair[key]["diff"], pair[key]["ci"]
        said = better if lo > 0 else worse if hi < 0 else same
        lines.append(f"{question} {a} vs {b}: {d:+.3f} {LABELS[key]}, 95% interval [{lo:+.3f}, {hi:+.3f}]: {said}.")
    return lines


def control_lines(metrics: dict) -> list[str]:
    """The report's section on the controls: their verdicts, and what the untrained twin is."""
    lines = control_verdicts(metrics)
    if not lines:
        return []
    return ["## Controls", "", *(f"- {line}" for line in lines), "",
            "`untrained` and `hybrid_untrained` read the codes of the encoder's untrained twin: the same fitted "
            "preprocessing, vocabularies, segment choice and untrained blocks, the network's weights left at the "
            "seeded initialisation its training started from (models/untrained_encoder). They differ from "
            "`latent` and `hybrid` in the trained weights only.", ""]


def selection_lines(metrics: dict) -> list[str]:
    """Whether keeping fewer features helped each selected model: its paired difference with itself."""
    key = HEADLINE[metrics.get("task", "binary")]
    lines = ["**Feature selection.**"]
    for name, info in metrics["select"].items():
        base = name.rsplit("_select", 1)[0]
        d = metrics["paired"][f"{name}_vs_{base}"][key]
        lo, hi = d["ci"]
        said = "helped" if lo > 0 else "hurt" if hi < 0 else "made no clear difference"
        lines.append(f"- `{name}` keeps {len(info['kept'])} of {info['from']} features (chosen on the training rows): "
                     f"{d['diff']:+.3f} {LABELS[key]} against `{base}`, 95% interval [{lo:+.3f}, {hi:+.3f}]: it {said}.")
    return lines + [""]


def _bars(metrics: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = _metric_names(metrics)
    models = list(metrics["models"])
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.4), squeeze=False)
    for ax, k in zip(axes[0], names):
        v = np.array([metrics["models"][m][k] for m in models])
        ci = np.array([metrics["models"][m][k + "_ci"] for m in models])
        # a point estimate can fall outside its bootstrap percentile interval (few positives): no
        # negative whisker, matplotlib refuses one
        err = np.clip([v - ci[:, 0], ci[:, 1] - v], 0.0, None)  # (2, models)
        ax.barh(models, v, xerr=err, color="#4c72b0", capsize=3)
        ax.set_title(LABELS[k])
        ax.set_xlim(0, 1)
        ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _markdown(result: CompareResult) -> str:
    m = result.metrics
    periods = m["periods"]
    lines = [
        "# seqae comparison report", "",
        f"Label `{result.label_col}`, unit `{m['unit']}`, task {m['task']}; test set: {m['n_test']} rows from "
        f"{m['n_test_entities']} entities" + (f", {m['test_positive_rate']:.2%} positive." if m.get("test_positive_rate") is not None else "."),
        "", "## Results on the test period", "", render_table(m), "",
        f"**Verdict.** {verdict(m)}", "",
        *([f"One model of the same columns instead of the stacked one: {verdict(m, 'hybrid_joint')}", ""]
          if "hybrid_joint_vs_aggregates" in m["paired"] else []),
        *control_lines(m),
        *(selection_lines(m) if m.get("select") else []),
        f"Intervals: 95% bootstrap over {m['bootstrap']['resamples']} resamples of whole entities "
        f"(`{m['bootstrap']['by']}`); differences are paired (same resamples for both models). "
        f"Precision @budget is the precision of the top {m['alert_budget']:.1%} of scores.", "",
        "## Periods", "", f"Split: {periods['method']}.", "",
        *[f"- {p}: {periods[p]}" for p in ("train", "valid", "test") if p in periods], "",
        *(_gap_lines(m["label_delay"]) if m.get("label_delay") else []),
        "The encoder, its scalers and vocabularies, and the baseline category codes are fitted on the train "
        "period only; classifiers stop early and pick thresholds on the validation period; every number "
        "above is measured on the test period. Features of an event use that event and earlier ones only.", "",
        "## Models", "",
        "- `raw_last`: the event's own columns;",
        "- `aggregates`: `raw_last` plus point-in-time aggregates over the encoder's window (counts, "
        "mean/std/min/max, z-score and ratio of the current value, time since the previous event, sums and "
        "counts over the last hour and day, novelty and share of each category);",
        "- `latent`: the encoder's codes `z_*` alone;",
        ("- `hybrid`: the codes' surprise channels (how each event departs from what its history "
         "predicted, and, with a `surprise_halflife`, their recent mean and variance) plus aggregates;"
         if m.get("hybrid_codes") == "surprise" else "- `hybrid`: codes plus aggregates;"),
        *(["  `hybrid_full`: every code channel plus aggregates;"] if "hybrid_full" in m["models"] else []),
        *(["  `hybrid_recon`: `hybrid` plus the autoencoder's reconstruction error;"] if "hybrid_recon" in m["models"] else []),
        *(["- `untrained`: the untrained twin's codes in place of `latent`'s; `hybrid_untrained`: the same "
            "in place of `hybrid`'s (controls: only the trained weights differ);"] if "untrained" in m["models"] else []),
        *(["- `minirocket`: the encoder's untrained blocks alone (MiniRocket's random-kernel features and summary "
            "statistics of each numeric channel), a raw-feature baseline of their own;"] if "minirocket" in m["models"] else []),
        "- each `hybrid` model is stacked: the `aggregates` model first, then trees on all its columns boosted "
        "from that model's scores, kept where they lower the validation log-loss, so it holds only what the "
        "codes add to the aggregates" + ("; `hybrid_joint` is one model of the same columns as `hybrid`." if
                                          "hybrid_joint" in m["models"] else "."), "",
        *([] if "hybrid_recon" in m["models"] else
          ["Variants of `hybrid` (`hybrid_joint`, `hybrid_recon`, `hybrid_full`) are fitted with `--variants`.", ""]),
        "All go through the same XGBoost classifier code with the same split and tuning budget.", "",
        *([f"The encoder trained with the command's preset {', '.join(f'{k}={v}' for k, v in m['encoder_preset'].items())} "
           "(give --config to choose every option).", ""] if m.get("encoder_preset") else []),
        "## Plots", "",
        *(["![PR curves](pr_curves.png)", ""] if result.curves else []),
        "![metrics](metric_bars.png)", "", "![encoder loss](encoder_loss.png)", "",
        f"Encoder `{m['encoder_id'][:12]}`: models/encoder; classifiers: models/<name>; "
        "test predictions: predictions.parquet.",
    ]
    return "\n".join(lines) + "\n"


def _gap_lines(gap: dict) -> list[str]:
    return [f"**Label delay {gap['delay']}.** The classifiers learn from labels up to {gap['labels_until']} only: "
            f"the test period starts at {gap['test_from']}, and labels arrive {gap['delay']} late, as chargebacks do. "
            f"{gap['rows_in_gap']} rows of the train and validation periods fall in that gap and are left out of "
            f"the classifiers' training ({gap['rows_labelled']} rows kept; validation on {gap['validation']}). "
            "The encoder, which needs no labels, still trained on the whole train period.", ""]


def write_report(result: CompareResult, out: str | Path, overwrite: bool = False) -> Path:
    """Write REPORT_DIR atomically: report.md, metrics.json, predictions.parquet, PNGs, models/."""
    with atomic_output(out, overwrite, directory=True) as tmp:
        write_json(tmp / "metrics.json", result.metrics)
        result.predictions.to_parquet(tmp / "predictions.parquet", index=False)
        if result.curves:
            plot_curves(result.curves, tmp / "pr_curves.png", "pr")
        _bars(result.metrics, tmp / "metric_bars.png")
        (tmp / "models").mkdir()
        result.encoder.save(tmp / "models" / "encoder", preset=result.metrics.get("encoder_preset"))
        if result.untrained is not None:
            result.untrained.save(tmp / "models" / "untrained_encoder")
        shutil.copy(tmp / "models" / "encoder" / "loss.png", tmp / "encoder_loss.png")
        for name, clf in result.classifiers.items():
            clf.save(tmp / "models" / name)
        (tmp / "report.md").write_text(_markdown(result))
    return Path(out)


def stage_lines(seconds: dict[str, float]) -> str:
    """Where the time went: one line per stage, in order, with its share of the whole."""
    total = sum(seconds.values()) or 1.0
    width = max(map(len, seconds), default=0)
    lines = [f"{name:<{width}}  {s:8.1f} s  {100 * s / total:5.1f}%" for name, s in seconds.items()]
    return "\n".join(["stage seconds:", *lines, f"{'total':<{width}}  {total:8.1f} s"])
