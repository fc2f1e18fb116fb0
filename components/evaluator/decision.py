"""Threshold fitting, metrics and the blessing rule: pure numpy, unit-tested.

Which rows fit the threshold:
- with labels: the eval split's normal rows (label 0), except `contamination`
  (all rows: it is the expected anomaly rate of the data), `best_f1` and
  `auto` when it picks best_f1 (all rows with their labels);
- without labels: all eval rows.

A candidate is blessed unless: the eval split is empty, any error is NaN/Inf,
ROC-AUC is under `min_roc_auc`, or it is worse than the baseline beyond
`baseline_tolerance` (ROC-AUC with labels; false-alarm rate of normal rows at
each model's own threshold without). Every reason is recorded.
"""
import time
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from components.evaluator import metrics, thresholds
from components.evaluator.settings import EvaluationSettings, ThresholdSettings
from components.evaluator.error_pass import ANOMALY, NORMAL, UNLABELED, ModelSummary

USES_ALL_ROWS = ("contamination", "best_f1", "auto")
USES_LABELS = ("best_f1", "auto")


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
    elif method not in USES_LABELS:
        labels = None
    return thresholds.compute_threshold(method, errors, dict(params), labels=labels)


def fitted_on(thr: thresholds.ThresholdResult, labeled: bool) -> str:
    """Which eval rows the threshold was fitted on, in words (threshold.json)."""
    if not labeled:
        return "eval split, all rows"
    if thr.method in USES_LABELS and thr.details.get("chosen", "best_f1") == "best_f1":
        return "eval split, all rows with their labels (F1-maximising threshold)"
    if thr.method in USES_ALL_ROWS and thr.method not in USES_LABELS:
        return "eval split, all rows"
    return "eval split, normal rows (label 0)"


def model_metrics(summary: ModelSummary, labeled: bool, threshold: float) -> Dict[str, Any]:
    errors, labels = _rows(summary, labeled)
    out: Dict[str, Any] = {"eval_rows": summary.count, "nonfinite_errors": summary.nonfinite}
    fitted = summary.groups[NORMAL] if labeled else summary.groups[UNLABELED]
    out["error_stats"] = {g: s.to_dict() for g, s in summary.groups.items() if s.count}
    if labeled and labels is not None and len(errors):
        out.update(metrics.classification_metrics(errors, labels, threshold))
    elif len(errors):
        flagged = float(np.mean(errors > threshold))
        out["flagged_rate"] = flagged
        out["false_alarm_rate"] = flagged
    if labeled and fitted.count:
        out["false_alarm_rate"] = float(np.mean(fitted.sample() > threshold))
    n = max(summary.count - summary.nonfinite, 1)
    out["feature_mean_error"] = ([] if summary.feature_error_sum is None
                                 else (summary.feature_error_sum / n).tolist())
    return out


def compare_with_baseline(candidate: Dict[str, Any], baseline: Optional[Dict[str, Any]],
                          labeled: bool, tolerance: float) -> Optional[Dict[str, Any]]:
    """The baseline rule, spelled out: which metric, both values, the tolerance, the verdict.

    With labels (both classes in the eval split) the metric is ROC-AUC, higher is
    better: the candidate passes if roc_auc >= baseline - tolerance. Otherwise it
    is the false-alarm rate of the eval split's normal rows (all rows without
    labels) at each model's own threshold, lower is better: it passes if
    far <= baseline + tolerance. `passed` is None when neither can be computed.
    Returns None without a baseline.
    """
    if baseline is None:
        return None
    auc, b_auc = candidate.get("roc_auc"), baseline.get("roc_auc")
    if labeled and auc is not None and b_auc is not None:
        passed = auc >= b_auc - tolerance
        return {"metric": "roc_auc", "higher_is_better": True, "candidate": auc,
                "baseline": b_auc, "tolerance": tolerance, "passed": passed,
                "text": (f"ROC-AUC {auc:.4f} vs the baseline's {b_auc:.4f} on the same eval rows "
                         f"(tolerance {tolerance}): "
                         + ("not worse beyond the tolerance" if passed
                            else "worse beyond the tolerance"))}
    far, b_far = candidate.get("false_alarm_rate"), baseline.get("false_alarm_rate")
    rows = "normal eval rows" if labeled else "eval rows (no labels: assumed normal)"
    if far is None or b_far is None:
        return {"metric": None, "candidate": None, "baseline": None, "tolerance": tolerance,
                "passed": None,
                "text": "could not compare with the baseline: neither ROC-AUC nor the "
                        "false-alarm rate could be computed on the eval split"}
    passed = far <= b_far + tolerance
    return {"metric": "false_alarm_rate", "higher_is_better": False, "candidate": far,
            "baseline": b_far, "tolerance": tolerance, "passed": passed,
            "text": (f"false-alarm rate {far:.4f} of {rows} at its own threshold vs the "
                     f"baseline's {b_far:.4f} at its own (tolerance {tolerance}): "
                     + ("not worse beyond the tolerance" if passed
                        else "worse beyond the tolerance"))}


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
    comparison = None if ignore_baseline else compare_with_baseline(
        candidate, baseline, labeled, tolerance)
    if comparison is not None and not comparison["passed"]:
        reasons.append(comparison["text"] + (
            "; pass --ignore-baseline to bless without the comparison"
            if comparison["passed"] is None else ""))
    # The same rule on the eval rows the baseline was blessed on: new data that
    # is poisoned (anomalies labelled or assumed normal) cannot vouch for itself.
    reference = None
    if (not ignore_baseline and baseline is not None and candidate.get("reference")
            and baseline.get("reference")):
        reference = compare_with_baseline(candidate["reference"], baseline["reference"],
                                          labeled, tolerance)
        reference["text"] = "on the baseline's eval rows: " + reference["text"]
        if reference["passed"] is False:
            reasons.append(reference["text"])
    blessed = not reasons
    if blessed:
        passed = "no baseline: blessed because the model is usable" if baseline is None else ""
        if baseline is None:
            if min_roc_auc is not None:
                passed += f" and ROC-AUC {auc:.4f} >= min_roc_auc {min_roc_auc}"
        elif ignore_baseline:
            passed = "baseline ignored (ignore_baseline=true)"
        else:
            passed = comparison["text"] + (f"; {reference['text']}" if reference else "")
            if min_roc_auc is not None:
                passed += f"; ROC-AUC {auc:.4f} >= min_roc_auc {min_roc_auc}"
        reasons.append(passed)
    return blessed, reasons


def evaluate(summaries: Mapping[str, Mapping[str, ModelSummary]], labeled: bool,
             threshold: ThresholdSettings, evaluation: EvaluationSettings,
             feature_keys: List[str], label_column: Optional[str],
             baseline_threshold: Optional[float] = None,
             baseline_uri: Optional[str] = None, reference_uri: Optional[str] = None,
             started: Optional[float] = None) -> Dict[str, Any]:
    """The whole judgement of one evaluation, from the error summaries.

    `summaries`: {"current": {"candidate": ..., "baseline": ...}, "reference": {...}}
    (the eval split of this run; the eval split the baseline was blessed on).
    The baseline is judged at `baseline_threshold`, the threshold it was served
    with, when known. Returns evaluation.json's content; its "threshold" is
    threshold.json's.
    """
    current = summaries["current"]
    method, params = threshold.method, dict(threshold.params)
    thr = fit_threshold(current["candidate"], labeled, method, params)
    cand = model_metrics(current["candidate"], labeled, thr.value)
    base = None
    if "baseline" in current:
        b_value = baseline_threshold
        if b_value is None:
            b_value = fit_threshold(current["baseline"], labeled, method, params).value
        base = model_metrics(current["baseline"], labeled, b_value)
        base["threshold"] = b_value
        base["model_uri"] = baseline_uri
        if "reference" in summaries:
            ref = summaries["reference"]
            cand["reference"] = model_metrics(ref["candidate"], labeled, thr.value)
            base["reference"] = model_metrics(ref["baseline"], labeled, b_value)
            cand["reference"]["examples_uri"] = reference_uri
    tolerance, ignore = float(evaluation.baseline_tolerance), bool(evaluation.ignore_baseline)
    blessed, reasons = decide(cand, base, labeled, evaluation.min_roc_auc, tolerance, ignore)
    threshold_info = {
        "threshold": thr.value,
        "method": thr.method,
        "params": thr.params,
        "details": thr.details,
        "fitted_on": fitted_on(thr, labeled),
        "error_stats": cand["error_stats"],
        "features": list(feature_keys),
        "label_column": label_column,
    }
    report = {
        "blessed": blessed,
        "reasons": reasons,
        "threshold": threshold_info,
        "metrics": cand,
        "baseline": base,
        "labeled": labeled,
        "comparison": None if ignore else compare_with_baseline(cand, base, labeled, tolerance),
        "baseline_ignored": ignore and base is not None,
    }
    if started is not None:
        report["seconds"] = round(time.time() - started, 3)
    return report
