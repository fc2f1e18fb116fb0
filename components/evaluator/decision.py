"""Threshold fitting, metrics and the blessing rule: pure numpy, unit-tested.

Which rows fit the threshold:
- with labels: the eval split's normal rows (label 0), except `contamination`
  (all rows: it is the expected anomaly rate of the data) and `best_f1`
  (all rows with their labels);
- without labels: all eval rows.

A candidate is blessed unless: the eval split is empty, any error is NaN/Inf,
ROC-AUC is under `min_roc_auc`, or it is worse than the baseline beyond
`baseline_tolerance` (ROC-AUC with labels; false-alarm rate of normal rows at
each model's own threshold without). Every reason is recorded.
"""
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from components.evaluator import thresholds
from components.evaluator.scoring import ANOMALY, NORMAL, UNLABELED, ModelSummary

USES_ALL_ROWS = ("contamination", "best_f1")


def _rows(summary: ModelSummary, labeled: bool) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    if not labeled:
        return summary.groups[UNLABELED].sample(), None
    normal = summary.groups[NORMAL].sample()
    anomaly = summary.groups[ANOMALY].sample()
    errors = np.concatenate([normal, anomaly])
    labels = np.concatenate([np.zeros(len(normal), np.int64), np.ones(len(anomaly), np.int64)])
    return errors, labels


def fit_threshold(summary: ModelSummary, labeled: bool, method: str,
                  params: Dict[str, Any]) -> thresholds.ThresholdResult:
    errors, labels = _rows(summary, labeled)
    if labeled and method not in USES_ALL_ROWS:
        errors, labels = summary.groups[NORMAL].sample(), None
    elif method != "best_f1":
        labels = None
    return thresholds.compute_threshold(method, errors, dict(params), labels=labels)


def model_metrics(summary: ModelSummary, labeled: bool, threshold: float) -> Dict[str, Any]:
    errors, labels = _rows(summary, labeled)
    out: Dict[str, Any] = {"eval_rows": summary.count, "nonfinite_errors": summary.nonfinite}
    fitted = summary.groups[NORMAL] if labeled else summary.groups[UNLABELED]
    out["error_stats"] = {g: s.to_dict() for g, s in summary.groups.items() if s.count}
    if labeled and labels is not None and len(errors):
        out.update(thresholds.classification_metrics(errors, labels, threshold))
    elif len(errors):
        flagged = float(np.mean(errors > threshold))
        out["flagged_rate"] = flagged
        out["false_alarm_rate"] = flagged
    if labeled and fitted.count:
        out["false_alarm_rate"] = float(np.mean(fitted.sample() > threshold))
    n = max(summary.count - summary.nonfinite, 1)
    out["feature_mean_error"] = (summary.feature_error_sum / n).tolist()
    return out


def decide(candidate: Dict[str, Any], baseline: Optional[Dict[str, Any]], labeled: bool,
           min_roc_auc: Optional[float], tolerance: float,
           ignore_baseline: bool) -> Tuple[bool, List[str]]:
    """Returns (blessed, reasons). Reasons explain a refusal, or why it passed."""
    reasons: List[str] = []
    if candidate["eval_rows"] == 0:
        reasons.append("the eval split is empty")
    if candidate["nonfinite_errors"]:
        reasons.append(f"{candidate['nonfinite_errors']} reconstruction errors are NaN/Inf")
    auc = candidate.get("roc_auc")
    if min_roc_auc is not None:
        if auc is None:
            reasons.append(f"min_roc_auc={min_roc_auc} is set but ROC-AUC could not be "
                           "computed (needs labels with both classes in the eval split)")
        elif auc < min_roc_auc:
            reasons.append(f"ROC-AUC {auc:.4f} is below min_roc_auc {min_roc_auc}")
    if baseline is not None and not ignore_baseline:
        b_auc = baseline.get("roc_auc")
        if labeled and auc is not None and b_auc is not None:
            if auc < b_auc - tolerance:
                reasons.append(f"ROC-AUC {auc:.4f} is worse than the baseline's {b_auc:.4f} "
                               f"beyond the tolerance {tolerance}")
        else:
            far, b_far = candidate.get("false_alarm_rate"), baseline.get("false_alarm_rate")
            if far is not None and b_far is not None and far > b_far + tolerance:
                reasons.append(f"false-alarm rate {far:.4f} is worse than the baseline's "
                               f"{b_far:.4f} beyond the tolerance {tolerance}")
    blessed = not reasons
    if blessed:
        if baseline is None:
            reasons.append("no baseline: blessed because the model is usable"
                           + (f" and ROC-AUC {auc:.4f} >= {min_roc_auc}" if min_roc_auc else ""))
        elif ignore_baseline:
            reasons.append("baseline ignored (ignore_baseline=true)")
        else:
            reasons.append("not worse than the baseline within the tolerance")
    return blessed, reasons
