"""The figures of report.html (matplotlib Agg, inlined as base64 PNG)."""
import base64
import io
from typing import Any, Mapping, Optional, Sequence

import numpy as np


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_loss(history: Mapping[str, Sequence[float]], best_epoch: Optional[int]) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    for key, label in (("loss", "training loss"), ("val_loss", "validation loss")):
        values = history.get(key) or []
        if values:
            ax.plot(range(1, len(values) + 1), values, marker="o", ms=3, label=label)
    if best_epoch:
        ax.axvline(best_epoch, color="grey", ls=":", label=f"best epoch ({best_epoch})")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE (z-scored features)")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    return _png(fig)


def plot_histogram(errors_by_group: Mapping[str, np.ndarray], threshold: float) -> str:
    plt = _plt()
    groups = [(g, np.asarray(v, dtype=np.float64)) for g, v in errors_by_group.items()
              if np.asarray(v).size]
    allv = np.concatenate([v for _, v in groups]) if groups else np.array([1.0])
    allv = allv[np.isfinite(allv)]
    positive = allv[allv > 0]
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    use_log = positive.size > 0 and positive.max() / max(positive.min(), 1e-300) > 50
    if use_log:
        lo = min(positive.min(), threshold if threshold > 0 else positive.min())
        hi = max(positive.max(), threshold)
        bins = np.logspace(np.log10(lo) - 0.05, np.log10(hi) + 0.05, 60)
        ax.set_xscale("log")
    else:
        bins = np.linspace(min(allv.min(), threshold), max(allv.max(), threshold), 60)
    colors = {"normal": "tab:blue", "anomaly": "tab:red", "unlabeled": "tab:grey"}
    names = {"normal": "normal rows (label 0)", "anomaly": "anomalous rows (label 1)",
             "unlabeled": "eval rows (no labels)"}
    for g, v in groups:
        ax.hist(np.clip(v, bins[0], bins[-1]), bins=bins, alpha=0.55, color=colors.get(g),
                label=f"{names.get(g, g)}: {v.size}")
    ax.axvline(threshold, color="black", ls="--", lw=1.5, label=f"threshold {threshold:.4g}")
    ax.set_xlabel("reconstruction error (mean squared error of z-scored features)")
    ax.set_ylabel("rows")
    ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _png(fig)


def plot_curves(cand: Mapping[str, Any], base: Optional[Mapping[str, Any]],
                point: Mapping[str, Any]) -> str:
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(cand["roc"]["fpr"], cand["roc"]["tpr"], label="candidate")
    a2.plot(cand["pr"]["recall"], cand["pr"]["precision"], label="candidate")
    if base:
        a1.plot(base["roc"]["fpr"], base["roc"]["tpr"], ls="--", label="baseline")
        a2.plot(base["pr"]["recall"], base["pr"]["precision"], ls="--", label="baseline")
    a1.plot([0, 1], [0, 1], color="grey", lw=0.8, ls=":")
    if point.get("false_alarm_rate") is not None:
        a1.plot([point["false_alarm_rate"]], [point["recall"]], "ko", label="at the threshold")
        a2.plot([point["recall"]], [point["precision"]], "ko", label="at the threshold")
    a1.set(xlabel="false-positive rate", ylabel="true-positive rate (recall)",
           title=f"ROC (AUC {point.get('roc_auc', float('nan')):.4f})", xlim=(0, 1), ylim=(0, 1.02))
    a2.set(xlabel="recall", ylabel="precision",
           title=f"precision-recall (AP {point.get('pr_auc', float('nan')):.4f})", xlim=(0, 1),
           ylim=(0, 1.02))
    for a in (a1, a2):
        a.grid(alpha=0.3)
        a.legend(fontsize=8, loc="lower right" if a is a1 else "upper right")
    return _png(fig)


def plot_features(names: Sequence[str], values: Sequence[float], max_bars: int = 40) -> str:
    plt = _plt()
    order = np.argsort(-np.asarray(values, dtype=np.float64), kind="stable")[:max_bars]
    fig, ax = plt.subplots(figsize=(7.5, max(2.2, 0.22 * len(order) + 0.8)))
    ax.barh([names[i] for i in order][::-1], [values[i] for i in order][::-1], color="tab:purple")
    ax.set_xlabel("mean squared error on the eval split (z-scored units)")
    ax.grid(alpha=0.3, axis="x")
    return _png(fig)
