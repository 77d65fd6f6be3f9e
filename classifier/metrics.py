"""Classification metrics for fraud-style binary targets and for multi-class labels, and their plots."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn import metrics as skm

from classifier.thresholds import DEFAULT_BUDGET


def recall_at_fpr(y: np.ndarray, score: np.ndarray, max_fpr: float = 0.01) -> float:
    """Highest recall reachable with a false-positive rate of at most ``max_fpr``."""
    fpr, tpr, _ = skm.roc_curve(y, score)
    return float(tpr[fpr <= max_fpr].max())


def precision_at_budget(y: np.ndarray, score: np.ndarray, budget: float = DEFAULT_BUDGET) -> float:
    """Precision among the top ``budget`` share of scores (at least one alert)."""
    k = max(1, int(round(budget * len(score))))
    top = np.argsort(-score, kind="stable")[:k]
    return float(np.mean(y[top]))


def row_log_loss(y_idx: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """Each row's log-loss (n,) from class indices (n,) and probabilities (n, K)."""
    return -np.log(np.clip(proba[np.arange(len(y_idx)), y_idx].astype(np.float64), 1e-7, 1.0))


def clearly_lower(loss: np.ndarray, than: np.ndarray, z: float) -> bool:
    """Whether per-row losses ``loss`` (n,) beat ``than`` (n,) on the same rows by more than ``z``
    standard errors of their paired mean difference (a one-sided interval above zero)."""
    gain = than - loss  # (n,)
    if len(gain) < 2:
        return bool(gain.mean() > 0)
    return bool(gain.mean() > z * gain.std(ddof=1) / np.sqrt(len(gain)))


def reliability_table(y: np.ndarray, score: np.ndarray, bins: int = 10) -> list[dict]:
    """Mean predicted score vs observed positive rate in equal-width score bins."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(score, edges[1:-1]), 0, bins - 1)
    table = []
    for b in range(bins):
        m = which == b
        if m.any():
            table.append({"bin": f"[{edges[b]:.1f}, {edges[b + 1]:.1f})", "count": int(m.sum()),
                          "mean_score": float(score[m].mean()), "positive_rate": float(y[m].mean())})
    return table


def binary_metrics(y, score, threshold: float | None = None, budget: float = DEFAULT_BUDGET) -> dict:
    """ROC-AUC, PR-AUC, recall at 1% FPR, precision at the alert budget, Brier score, a reliability
    table, and (with a threshold) precision, recall, F1, FPR and the alert rate; AUCs are NaN when
    only one class is present."""
    y = np.asarray(y).astype(int)
    score = np.asarray(score, dtype=np.float64)
    both = 0 < y.sum() < len(y)
    out = {
        "n": int(len(y)), "positives": int(y.sum()),
        "roc_auc": float(skm.roc_auc_score(y, score)) if both else float("nan"),
        "pr_auc": float(skm.average_precision_score(y, score)) if both else float("nan"),
        "recall_at_1pct_fpr": recall_at_fpr(y, score, 0.01) if both else float("nan"),
        "precision_at_budget": precision_at_budget(y, score, budget), "alert_budget": budget,
        "brier": float(skm.brier_score_loss(y, np.clip(score, 0, 1))),
        "reliability": reliability_table(y, np.clip(score, 0, 1)),
    }
    if threshold is not None:
        pred = score >= threshold
        out.update({"threshold": float(threshold), "alert_rate": float(pred.mean()),
                    "precision": float(skm.precision_score(y, pred, zero_division=0)),
                    "recall": float(skm.recall_score(y, pred, zero_division=0)),
                    "f1": float(skm.f1_score(y, pred, zero_division=0)),
                    "fpr": float((pred & (y == 0)).sum() / max((y == 0).sum(), 1))})
    return out


def multiclass_metrics(y_idx, proba) -> dict:
    """Accuracy, macro-F1 and log-loss from class indices (n,) and probabilities (n, K)."""
    y_idx = np.asarray(y_idx)
    pred = np.asarray(proba).argmax(1)
    return {"n": int(len(y_idx)), "accuracy": float(skm.accuracy_score(y_idx, pred)),
            "macro_f1": float(skm.f1_score(y_idx, pred, average="macro")),
            "log_loss": float(skm.log_loss(y_idx, proba, labels=np.arange(proba.shape[1])))}


def plot_curves(curves: dict, path: str | Path, kind: str = "pr") -> None:
    """PR (``kind="pr"``) or ROC curves of several models, ``curves = {name: (y, score)}``, as one PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for name, (y, score) in curves.items():
        if kind == "pr":
            p, r, _ = skm.precision_recall_curve(y, score)
            ax.plot(r, p, label=f"{name} (AP {skm.average_precision_score(y, score):.3f})")
        else:
            f, t, _ = skm.roc_curve(y, score)
            ax.plot(f, t, label=f"{name} (AUC {skm.roc_auc_score(y, score):.3f})")
    if kind == "pr":
        ax.set(xlabel="recall", ylabel="precision", title="Precision-recall")
    else:
        ax.plot([0, 1], [0, 1], color="grey", lw=0.5)
        ax.set(xlabel="false-positive rate", ylabel="true-positive rate", title="ROC")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
