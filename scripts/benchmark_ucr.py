"""UCR/UEA benchmark: the default entity encoder on TRAIN, block by block, against its untrained twin.

Each set is turned into an event table (one row per series and time step, the class as label); the
encoder is trained on TRAIN with default options and its untrained twin is made from it
(``SequenceEncoder.untrained_twin``: the same fitted preprocessing, segment decision, random-kernel
channels and biases; only the network's weights differ, left at the seeded initialisation training
started from). Both code TRAIN and TEST once; then the default classifier (``LatentClassifier``,
the same for every row) is fitted on TRAIN codes of each column group and scored on TEST:

- ``full``: every block of the trained code (what ``encoder train`` + ``classifier train`` give);
- ``only:B``: block B alone; ``without:B``: every block but B (``encoder/blocks.py`` names them);
- ``learned``: the trained blocks alone (pooled LSTM states, segment maxima);
- ``twin:full``: the twin's code (its learned blocks, the same untrained blocks);
- ``twin:learned``: the twin's learned blocks alone.

Per set it prints the mean accuracy over the seeds with min-max, the training lift paired by seed
(``full - twin:full`` and ``learned - twin:learned``), and the published TS2Vec, T-Loss and
MiniRocket accuracies; a second table scores the learned blocks under the published encoders' own
protocol (an RBF SVM on the raw codes, ``fit_svm``), so that they meet TS2Vec and T-Loss under one
classifier. Every aeon set here was used to choose defaults (``docs/benchmarks.md``): these rows
are tuning data, not evidence of generalisation.

Usage: python scripts/benchmark_ucr.py [SET ... | --held-out] [--seeds 0,1,2,3,4] [--out TABLE.md]
       [--json RESULTS.json] [--set KEY=VALUE ...] [--rows all|attempt]

``--set`` overrides an encoder option for every set and seed (e.g. ``--set contrastive_weight=0.3``),
to measure one idea against the defaults; the twin is made from each trained encoder, so it follows.
``--compare DEFAULT.json ATTEMPT.json [--label NAME]`` then prints the attempt against the
defaults, paired by seed, from two runs' ``--json`` files, and runs nothing.

Sets default to the eight classification sets aeon ships on which defaults were chosen
(``ucr_data.BUNDLED``); ``--held-out`` runs the two on which none was (``ucr_data.HELD_OUT``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from options import parse_set  # noqa: E402
from ucr_data import BUNDLED, HELD_OUT, ucr_events  # noqa: E402

# Published test accuracies. TS2Vec and T-Loss: the TS2Vec paper's full UCR/UEA tables (Yue et al.,
# AAAI 2022, appendix; representation on TRAIN, RBF-SVM on TRAIN codes, TEST accuracy on the
# default split). MiniRocket: angus924/minirocket results/results_ucr109_mean.csv (Dempster et
# al., KDD 2021; ridge classifier, mean over 30 resamples, so a split other than ours), univariate
# equal-length sets only. Transcribed by hand; None where not published.
PUBLISHED = {  # name: (TS2Vec, T-Loss, MiniRocket)
    "GunPoint": (0.980, 0.980, 0.992), "BasicMotions": (0.975, 1.000, None),
    "ArrowHead": (0.857, 0.766, 0.881), "ItalyPowerDemand": (0.961, 0.954, 0.960),
    "JapaneseVowels": (0.984, 0.989, None), "OSULeaf": (0.851, 0.760, 0.958),
    "PickupGestureWiimoteZ": (0.820, 0.740, None), "ACSF1": (0.910, 0.900, 0.822),
}
TIME_LIMIT_S = 180
SVM_C = (1e-4, 1e-3, 1e-2, 0.1, 1, 10, 100, 1e3, 1e4, np.inf)  # the published encoders' grid of C
SVM_MAX_ITER = 10_000_000  # and their cap on libsvm's iterations in that search


def fit_svm(z_train: np.ndarray, y_train: np.ndarray):
    """The published encoders' evaluation protocol (T-Loss's, as TS2Vec's ``fit_svm`` repeats it):
    an RBF SVM (``gamma='scale'``) on the raw codes, ``C`` chosen by 5-fold cross-validation over
    ``SVM_C`` on TRAIN (``SVM_MAX_ITER`` iterations at most a fit), or ``C = inf`` where TRAIN has
    fewer than 50 series or fewer than 5 a class. It sets the learned blocks beside the published
    accuracies under the same classifier, not only under seqae's own."""
    from sklearn.model_selection import GridSearchCV
    from sklearn.svm import SVC
    svm = SVC(C=np.inf, kernel="rbf", gamma="scale")
    if len(y_train) < 50 or len(y_train) // len(np.unique(y_train)) < 5:
        return svm.fit(z_train, y_train)
    # the protocol's cap: a large C on classes that overlap can run libsvm for minutes
    search = GridSearchCV(svm.set_params(max_iter=SVM_MAX_ITER), {"C": list(SVM_C)}, cv=5)
    return search.fit(z_train, y_train).best_estimator_


def column_groups(enc) -> dict[str, tuple[str, list[str]]]:
    """Each row's code and columns: ``{row: ("trained" | "twin", [z_*, ...])}`` from ``code_blocks``."""
    from encoder.blocks import block_columns
    blocks = [b for b in enc.code_blocks() if b.width]
    names = [b.name for b in blocks]
    learned = [b.name for b in blocks if b.trained]
    every = block_columns(blocks, names)
    groups = {"full": ("trained", every)}
    groups |= {f"only:{n}": ("trained", block_columns(blocks, [n])) for n in names}
    if len(names) > 1:
        groups |= {f"without:{n}": ("trained", block_columns(blocks, [m for m in names if m != n])) for n in names}
    groups |= {"learned": ("trained", block_columns(blocks, learned)),
               "twin:full": ("twin", every), "twin:learned": ("twin", block_columns(blocks, learned))}
    return groups


ATTEMPT_ROWS = ("full", "learned", "twin:full", "twin:learned")  # ``--rows attempt``: the training lifts only


def run_once(name: str, train, test, seed: int, overrides: dict | None = None, rows=None) -> dict:
    """Train the default encoder with ``seed`` and make its untrained twin; code TRAIN and TEST with
    both; fit the default classifier on each column group (``column_groups``; ``rows``: only
    these, ``full`` among them). Returns the accuracy
    of each group and the seconds of the stages of a user's run (train, encode, classify ``full``)."""
    from classifier import LatentClassifier
    from encoder import EncoderConfig, SequenceEncoder
    start = time.perf_counter()
    enc = SequenceEncoder("series", "t", "label", EncoderConfig.of(seed=seed).replace(**(overrides or {}))).fit(train)
    trained = time.perf_counter()
    codes = {"trained": (enc.transform(train), enc.transform(test))}
    encoded = time.perf_counter()
    twin = enc.untrained_twin()
    codes["twin"] = (twin.transform(train), twin.transform(test))
    untrained = [c for b in enc.code_blocks() if not b.trained for c in b.columns]
    for mine, its in zip(codes["trained"], codes["twin"]):  # a fair control: only the trained blocks differ
        if not np.array_equal(mine[untrained].to_numpy(), its[untrained].to_numpy()):
            raise AssertionError(f"{name} seed {seed}: the twin's untrained blocks differ from the encoder's")
    y_test = codes["trained"][1]["label"].to_numpy()
    accuracy, seconds, groups = {}, {}, column_groups(enc)
    for row, (which, cols) in groups.items():
        if rows is not None and row not in rows:
            continue
        ztr, zte = codes[which]
        began = time.perf_counter()
        clf = LatentClassifier(seed=seed).fit(ztr[cols], ztr["label"])
        accuracy[row] = float(np.mean(clf.predict(zte[cols]) == y_test))
        seconds[row] = time.perf_counter() - began
    learned = groups["learned"][1]
    svm = {}  # the learned blocks under the published encoders' protocol
    for row, which in (("learned", "trained"), ("twin:learned", "twin")):
        ztr, zte = codes[which]
        svm[row] = float(np.mean(fit_svm(ztr[learned].to_numpy(), ztr["label"].to_numpy())
                                 .predict(zte[learned].to_numpy()) == y_test))
    return {"accuracy": accuracy, "svm": svm, "train_s": trained - start, "encode_s": encoded - trained,
            "classify_s": seconds["full"], "total_s": encoded - start + seconds["full"],
            "epochs": enc.training_["epochs_run"], "max_len": enc.max_len_, "patch": enc.config_.data.patch,
            "segments": enc.config_.blocks.segments, "segments_rule": enc.training_["segments"],
            "widths": {b.name: b.width for b in enc.code_blocks() if b.width}}


def spread(values) -> str:
    """``mean [min, max]``, or the single value."""
    v = np.asarray(values)
    return f"{v.mean():.3f}" if len(v) == 1 else f"{v.mean():.3f} [{v.min():.3f}, {v.max():.3f}]"


def paired(runs: list[dict], a: str, b: str) -> str:
    """``a - b`` paired by seed: mean, with the seeds' min and max and how many are above zero."""
    d = np.array([r["accuracy"][a] - r["accuracy"][b] for r in runs])
    text = f"{d.mean():+.3f}"
    return text if len(d) == 1 else f"{text} [{d.min():+.3f}, {d.max():+.3f}] ({int((d > 0).sum())}/{len(d)} > 0)"


def block_table(results: dict) -> str:
    """Per set, one row per column group: mean accuracy [min, max] over the seeds."""
    lines = ["| data set | code | blocks | accuracy, mean [min, max] |", "|---|---|---|---|"]
    for name, runs in results.items():
        widths = runs[0]["widths"]
        for row in runs[0]["accuracy"]:
            which = row.split(":", 1)[-1] if ":" in row else None
            width = (sum(widths.values()) if row in ("full", "twin:full") else
                     widths.get(which) if row.startswith("only:") else
                     sum(widths.values()) - widths[which] if row.startswith("without:") else
                     sum(w for n, w in widths.items() if n not in ("summary", "kernels")))
            lines.append(f"| {name} | {row} | {width} columns | {spread([r['accuracy'][row] for r in runs])} |")
    return "\n".join(lines)


def published_cells(name: str) -> list[str]:
    """The set's TS2Vec, T-Loss and MiniRocket accuracies as table cells (``not listed`` where none)."""
    return [("not listed" if v is None else f"{v:.3f}") for v in PUBLISHED.get(name, (None,) * 3)]


def summary_table(results: dict, n_seeds: int) -> str:
    """One row per set: the full code, the learned blocks, their untrained twins, the training lift
    paired by seed, the published accuracies and the whole run's time."""
    head = (f"| data set | full, mean [min, max] over {n_seeds} seeds | twin:full | full - twin:full | "
            "kernels alone | learned | twin:learned | learned - twin:learned | TS2Vec | T-Loss | MiniRocket | "
            "whole run s (max) |")
    lines = [head, "|" + "---|" * 12]
    for name, runs in results.items():
        acc = lambda row: spread([r["accuracy"][row] for r in runs])  # noqa: E731
        pub = published_cells(name)
        total = max(r["total_s"] for r in runs)
        kernels = acc("only:kernels") if "only:kernels" in runs[0]["accuracy"] else "none"
        lines.append(f"| {name} | {acc('full')} | {acc('twin:full')} | {paired(runs, 'full', 'twin:full')} | "
                     f"{kernels} | {acc('learned')} | {acc('twin:learned')} | "
                     f"{paired(runs, 'learned', 'twin:learned')} | {' | '.join(pub)} | "
                     f"{total:.0f}{'' if total <= TIME_LIMIT_S else ' OVER'} |")
    means = {row: np.mean([np.mean([r["accuracy"][row] for r in runs]) for runs in results.values()])
             for row in ("full", "twin:full", "learned", "twin:learned")}
    lifts = [np.mean([r["accuracy"]["full"] - r["accuracy"]["twin:full"] for r in runs]) for runs in results.values()]
    best = [max(v for v in PUBLISHED[n][:2]) for n in results if n in PUBLISHED]
    lines.append(f"\nMean over sets: full {means['full']:.3f}, twin:full {means['twin:full']:.3f} (training lift "
                 f"{means['full'] - means['twin:full']:+.3f}, lowest set {min(lifts):+.3f}); learned "
                 f"{means['learned']:.3f}, twin:learned {means['twin:learned']:.3f}"
                 + (f"; best of TS2Vec and T-Loss {np.mean(best):.3f}" if len(best) == len(results) else ""))
    return "\n".join(lines)


def probe_table(results: dict) -> str:
    """Per set, the learned blocks under the published encoders' protocol (``fit_svm``) beside
    seqae's own classifier: trained and twin, the lift paired by seed, and the published accuracies."""
    lines = ["| data set | learned, SVM protocol | twin:learned, SVM protocol | learned - twin:learned, SVM (paired) | "
             "learned, seqae's classifier | TS2Vec | T-Loss |", "|" + "---|" * 7]
    means = []
    for name, runs in results.items():
        svm = {row: np.array([r["svm"][row] for r in runs]) for row in ("learned", "twin:learned")}  # (seeds,)
        ts2vec, tloss = published_cells(name)[:2]
        lines.append(f"| {name} | {spread(svm['learned'])} | {spread(svm['twin:learned'])} | "
                     f"{differences(svm['learned'] - svm['twin:learned'])} | "
                     f"{spread([r['accuracy']['learned'] for r in runs])} | {ts2vec} | {tloss} |")
        means.append((svm["learned"].mean(), svm["twin:learned"].mean(),
                      max(PUBLISHED[name][:2]) if name in PUBLISHED else np.nan))
    m = np.nanmean(np.array(means), axis=0)
    published = f"; best of TS2Vec and T-Loss {m[2]:.3f}" if all(n in PUBLISHED for n in results) else ""
    lines.append(f"\nMean over sets, SVM protocol: learned {m[0]:.3f}, twin:learned {m[1]:.3f} "
                 f"(lift {m[0] - m[1]:+.3f}){published}")
    return "\n".join(lines)


def differences(d) -> str:
    """Paired differences: ``mean [min, max] (above/n > 0, below < 0)``."""
    d = np.asarray(d)
    return (f"{d.mean():+.3f} [{d.min():+.3f}, {d.max():+.3f}] "
            f"({int((d > 0).sum())}/{len(d)} > 0, {int((d < 0).sum())} < 0)")


def attempt_table(base: dict, attempt: dict, label: str) -> str:
    """An attempt against the defaults, from two ``--json`` files of the same sets: per set over the
    seeds both ran, the full code of each, their difference and each one's training lift over its
    twin (all paired by seed), the learned blocks and their lift, and the training seconds."""
    lines = [f"| data set | seeds | full: default / {label} | {label} - default, full (paired) | "
             f"{label}: full - twin (paired) | default: full - twin (paired) | learned: default / {label} | "
             f"{label}: learned - twin (paired) | training s: default / {label} | best published |", "|" + "---|" * 10]
    per_set = []  # each set's means, by "default:" / "attempt:" and row
    for name, runs in attempt.items():
        n = min(len(runs), len(base.get(name, [])))
        if not n:
            continue
        v = {f"{side}:{row}": np.array([r["accuracy"][row] for r in rs[:n]])  # (seeds,)
             for side, rs in (("default", base[name]), ("attempt", runs)) for row in ATTEMPT_ROWS}
        v |= {f"{side}:train_s": np.array([r["train_s"] for r in rs[:n]])
              for side, rs in (("default", base[name]), ("attempt", runs))}
        best = max(PUBLISHED[name][:2]) if name in PUBLISHED else float("nan")
        lines.append(f"| {name} | {n} | {v['default:full'].mean():.3f} / {v['attempt:full'].mean():.3f} | "
                     f"{differences(v['attempt:full'] - v['default:full'])} | "
                     f"{differences(v['attempt:full'] - v['attempt:twin:full'])} | "
                     f"{differences(v['default:full'] - v['default:twin:full'])} | "
                     f"{v['default:learned'].mean():.3f} / {v['attempt:learned'].mean():.3f} | "
                     f"{differences(v['attempt:learned'] - v['attempt:twin:learned'])} | "
                     f"{v['default:train_s'].mean():.0f} / {v['attempt:train_s'].mean():.0f} | {best:.3f} |")
        per_set.append({k: x.mean() for k, x in v.items()} | {"best": best})
    m = {k: np.nanmean([s[k] for s in per_set]) for k in per_set[0]}  # means over sets
    lines.append(f"| mean | | {m['default:full']:.3f} / {m['attempt:full']:.3f} | "
                 f"{m['attempt:full'] - m['default:full']:+.3f} | {m['attempt:full'] - m['attempt:twin:full']:+.3f} | "
                 f"{m['default:full'] - m['default:twin:full']:+.3f} | "
                 f"{m['default:learned']:.3f} / {m['attempt:learned']:.3f} | "
                 f"{m['attempt:learned'] - m['attempt:twin:learned']:+.3f} | "
                 f"{m['default:train_s']:.0f} / {m['attempt:train_s']:.0f} | {m['best']:.3f} |")
    return "\n".join(lines)


def benchmark(names, seeds, overrides: dict | None = None, save=None, rows=None) -> dict:
    """Run every set and seed; returns ``{set: [run, ...]}`` (``run_once``'s dicts). ``save`` (a
    path) receives the results so far as JSON after every run, so a long run can be read early."""
    results = {}
    for name in names:
        train, test = ucr_events(name, "train"), ucr_events(name, "test")
        results[name] = []
        for seed in seeds:
            r = run_once(name, train, test, seed, overrides, rows)
            results[name].append(r)
            a = r["accuracy"]
            print(f"{name:22s} seed {seed}: full {a['full']:.3f}, twin {a['twin:full']:.3f}, learned "
                  f"{a['learned']:.3f}, twin learned {a['twin:learned']:.3f} (SVM protocol {r['svm']['learned']:.3f}, "
                  f"{r['svm']['twin:learned']:.3f}); trained {r['train_s']:.0f} s "
                  f"({r['epochs']} epochs), whole run {r['total_s']:.0f} s, blocks {r['widths']}", flush=True)
            if save:
                Path(save).write_text(json.dumps(results, indent=1))
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("datasets", nargs="*", help="aeon sets [every tuning set, ucr_data.BUNDLED]")
    ap.add_argument("--held-out", action="store_true",
                    help="The sets no default was chosen on (ucr_data.HELD_OUT) instead of the tuning sets.")
    ap.add_argument("--seeds", default="0,1,2,3,4", help="Comma-separated seeds [0,1,2,3,4].")
    ap.add_argument("--out", help="Also write both tables to this markdown file.")
    ap.add_argument("--json", help="Also write every run's accuracies and timings to this JSON file.")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="Encoder option override.")
    ap.add_argument("--threads", type=int, default=2, help="Torch threads [2]; XGBoost follows OMP_NUM_THREADS.")
    ap.add_argument("--rows", choices=("all", "attempt"), default="all",
                    help="attempt: only " + ", ".join(ATTEMPT_ROWS) + " (an idea's training lifts, without the block "
                         "ablations) [all]")
    ap.add_argument("--compare", nargs=2, metavar=("DEFAULT.json", "ATTEMPT.json"),
                    help="Run nothing: print an attempt's table against the defaults from two --json files.")
    ap.add_argument("--label", default="attempt", help="The attempt's name in --compare's table [attempt].")
    args = ap.parse_args()
    if args.compare:
        base, attempt = (json.loads(Path(p).read_text()) for p in args.compare)
        print(attempt_table(base, attempt, args.label))
        return
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    overrides = parse_set(args.set)
    names = args.datasets or list(HELD_OUT if args.held_out else BUNDLED)
    results = benchmark(names, seeds, overrides, args.json, ATTEMPT_ROWS if args.rows == "attempt" else None)
    text = (summary_table(results, len(seeds)) + "\n\n" + probe_table(results) + "\n\n" + block_table(results)
            + (f"\n\nencoder options: {overrides}" if overrides else ""))
    print("\n" + text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
