"""Metrics of `error > threshold` against labels, and ROC / PR curves (pure numpy).

* A row is predicted anomalous when ``error > threshold`` (strictly).
* Labels are binary: ``1``/``True`` = anomaly, ``0``/``False`` = normal.
* Every value returned is JSON-serialisable.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from components.evaluator.arrays import as_errors, as_float, as_labels


def _binary_clf_curve(errors: np.ndarray, lab: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative (fps, tps) at each distinct score, scores in decreasing order.

    Entry ``i`` counts the rows with ``error >= thresholds[i]``.
    """
    order = np.argsort(-errors, kind="mergesort")
    e, y = errors[order], lab[order].astype(np.int64)
    last_of_group = np.flatnonzero(np.diff(e) != 0)
    idx = np.concatenate([last_of_group, [e.size - 1]])
    tps = np.cumsum(y)[idx]
    fps = (idx + 1) - tps
    return fps, tps, e[idx]


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties replaced by their average rank."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    boundaries = np.flatnonzero(np.concatenate([[True], xs[1:] != xs[:-1], [True]]))
    starts, ends = boundaries[:-1], boundaries[1:]  # group g covers [starts[g], ends[g])
    avg = 0.5 * (starts + 1 + ends)  # mean of ranks starts+1 .. ends
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def roc_auc(errors: Any, labels: Any) -> float:
    """ROC-AUC of `errors` as anomaly scores for 0/1 `labels` (both classes needed)."""
    errs, lab = _prepare("roc_auc", errors, labels)
    if lab.all() or not lab.any():
        raise ValueError("roc_auc: labels must contain both classes")
    return _roc_auc(errs, lab)


def _roc_auc(errors: np.ndarray, lab: np.ndarray) -> float:
    """Mann-Whitney U / (P * N) with average ranks for ties (equals sklearn)."""
    n_pos = int(np.count_nonzero(lab))
    n_neg = int(lab.size - n_pos)
    ranks = _average_ranks(errors)
    u = float(np.sum(ranks[lab])) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def pr_auc(errors: Any, labels: Any) -> float:
    """Average precision of `errors` as anomaly scores for 0/1 `labels` (both classes needed)."""
    errs, lab = _prepare("pr_auc", errors, labels)
    if lab.all() or not lab.any():
        raise ValueError("pr_auc: labels must contain both classes")
    return _average_precision(errs, lab)


def _average_precision(errors: np.ndarray, lab: np.ndarray) -> float:
    """Step-wise AP: sum_i (R_i - R_{i-1}) * P_i over distinct thresholds (sklearn)."""
    fps, tps, _ = _binary_clf_curve(errors, lab)
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.concatenate([[0.0], recall])) * precision))


def _prepare(name: str, errors: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    arr = as_errors(name, errors)
    return arr, as_labels(name, labels, arr.size)


def classification_metrics(errors: Any, labels: Any, threshold: float) -> dict[str, Any]:
    """Metrics of ``error > threshold`` against binary ``labels``.

    Returns a JSON-serialisable dict with ``precision, recall, f1, roc_auc,
    pr_auc, accuracy, tp, fp, tn, fn, false_alarm_rate, n, n_anomalies``.

    * ``precision`` / ``recall`` / ``f1`` are ``0.0`` when undefined
      (zero denominators), like scikit-learn's ``zero_division`` fallback.
    * ``false_alarm_rate = fp / (fp + tn)``; ``None`` when there are no
      normal rows.
    * ``roc_auc`` (tie-aware, rank based) and ``pr_auc`` (average precision,
      step-wise like ``sklearn.metrics.average_precision_score``) are
      threshold-free and ``None`` when ``labels`` contain a single class.
    """
    arr, lab = _prepare("classification_metrics", errors, labels)
    thr = as_float("classification_metrics", "threshold", threshold)
    pred = arr > thr
    tp = int(np.count_nonzero(pred & lab))
    fp = int(np.count_nonzero(pred & ~lab))
    fn = int(np.count_nonzero(~pred & lab))
    tn = int(arr.size - tp - fp - fn)
    n_pos, n_neg = tp + fn, fp + tn
    both = n_pos > 0 and n_neg > 0
    return {
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / n_pos if n_pos else 0.0,
        "f1": 2.0 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        "roc_auc": _roc_auc(arr, lab) if both else None,
        "pr_auc": _average_precision(arr, lab) if both else None,
        "accuracy": (tp + tn) / arr.size,
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "false_alarm_rate": fp / n_neg if n_neg else None,
        "n": int(arr.size),
        "n_anomalies": n_pos,
    }


def _downsample_idx(length: int, max_points: int) -> np.ndarray:
    if length <= max_points:
        return np.arange(length)
    return np.unique(np.round(np.linspace(0, length - 1, max_points)).astype(np.int64))


def _check_max_points(name: str, max_points: int) -> int:
    if isinstance(max_points, bool) or int(max_points) != max_points or max_points < 2:
        raise ValueError(f"{name}: max_points must be an integer >= 2, got {max_points!r}")
    return int(max_points)


def roc_curve_points(errors: Any, labels: Any, max_points: int = 200) -> dict[str, list]:
    """ROC curve as ``{"fpr": [...], "tpr": [...], "thresholds": [...]}``.

    Points go from ``(0, 0)`` (threshold ``None``: nothing flagged) to
    ``(1, 1)``; point ``i > 0`` flags rows with ``error >= thresholds[i]``.
    Downsampled to at most ``max_points`` points, always keeping both ends.
    All lists are empty when ``labels`` contain a single class.
    """
    max_points = _check_max_points("roc_curve_points", max_points)
    arr, lab = _prepare("roc_curve_points", errors, labels)
    n_pos = int(np.count_nonzero(lab))
    n_neg = int(lab.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return {"fpr": [], "tpr": [], "thresholds": []}
    fps, tps, thr = _binary_clf_curve(arr, lab)
    fpr = np.concatenate([[0.0], fps / n_neg])
    tpr = np.concatenate([[0.0], tps / n_pos])
    thresholds: list[float | None] = [None, *map(float, thr)]
    idx = _downsample_idx(fpr.size, max_points)
    return {"fpr": fpr[idx].tolist(), "tpr": tpr[idx].tolist(),
            "thresholds": [thresholds[i] for i in idx]}


def pr_curve_points(errors: Any, labels: Any, max_points: int = 200) -> dict[str, list]:
    """Precision-recall curve as ``{"precision", "recall", "thresholds"}`` lists.

    Starts at ``recall=0, precision=1`` (threshold ``None``: nothing flagged)
    and follows decreasing thresholds; point ``i > 0`` flags rows with
    ``error >= thresholds[i]``.  Downsampled to at most ``max_points`` points,
    always keeping both ends.  All lists are empty when ``labels`` contain a
    single class.
    """
    max_points = _check_max_points("pr_curve_points", max_points)
    arr, lab = _prepare("pr_curve_points", errors, labels)
    n_pos = int(np.count_nonzero(lab))
    if n_pos == 0 or n_pos == lab.size:
        return {"precision": [], "recall": [], "thresholds": []}
    fps, tps, thr = _binary_clf_curve(arr, lab)
    precision = np.concatenate([[1.0], tps / (tps + fps)])
    recall = np.concatenate([[0.0], tps / n_pos])
    thresholds: list[float | None] = [None, *map(float, thr)]
    idx = _downsample_idx(precision.size, max_points)
    return {"precision": precision[idx].tolist(), "recall": recall[idx].tolist(),
            "thresholds": [thresholds[i] for i in idx]}

