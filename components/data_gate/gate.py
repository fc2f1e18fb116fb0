"""The gate's judgement, TFX-free: schema findings + drift against the accepted statistics."""
import time
from typing import Any, Dict, List, Optional

from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from components.columns import ColumnRoles
from components.data_gate import drift
from components.data_gate.settings import DriftSettings


def merge_splits(findings: List[drift.Finding]) -> List[drift.Finding]:
    """One finding per feature and text, naming every split it was seen in."""
    merged: Dict[tuple, Any] = {}
    for f in findings:
        key = (f.feature, f.text)
        if key in merged and merged[key].split and f.split:
            prev = merged[key]
            merged[key] = drift.Finding(**{**prev.__dict__, "split": f"{prev.split}, {f.split}"})
        elif key not in merged:
            merged[key] = f
    return list(merged.values())


def judge(current: statistics_pb2.DatasetFeatureStatisticsList, schema: schema_pb2.Schema,
          anomalies: List[drift.Finding], roles: ColumnRoles, settings: DriftSettings,
          baseline: Optional[statistics_pb2.DatasetFeatureStatisticsList] = None,
          started: Optional[float] = None,
          reported: Optional[List[drift.Finding]] = None) -> Dict[str, Any]:
    """gate_report.json's content (without artifact ids); "accepted" says the verdict.

    `current`: this run's single-dataset statistics of the compared split;
    `anomalies`: the schema findings of every split that stop a run;
    `reported`: those only reported (new category values, passthrough
    columns); `baseline`: the accepted statistics of the last run whose data
    passed, None on the first run (then drift is not measured). Passthrough
    columns are never compared for drift.
    """
    measurements: List[drift.Finding] = []
    checked = bool(settings.enabled and baseline is not None)
    if checked:
        measurements = drift.drift_measurements(drift.compare(
            current, baseline, schema, roles.label, settings.js_threshold,
            settings.linf_threshold, skip=roles.passthrough))
    findings = drift.drifted(measurements) + merge_splits(anomalies)
    report = {
        "reported": [f.to_dict() for f in merge_splits(reported or [])],
        "accepted": not findings,
        "findings": [f.to_dict() for f in findings],
        "drift_measurements": [m.to_dict() for m in measurements],
        "drift_checked": checked,
        "drift_enabled": settings.enabled,
        "thresholds": {drift.JS: settings.js_threshold, drift.LINF: settings.linf_threshold},
        "label_column": roles.label,
        "rows": int(current.datasets[0].num_examples),
        "max_drift": max((m.value for m in measurements), default=None),
        "summary": drift.summary_sentence(findings) if findings else None,
    }
    if started is not None:
        report["seconds"] = round(time.time() - started, 3)
    return report
