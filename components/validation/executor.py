"""DataGate executor: unpack artifacts, validate, then accept or raise.

The checks themselves are pure functions in `drift.py`; this module only
reads and writes artifacts.
"""
import json
import logging
import os
import time
from typing import Any, Dict, List

from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx import types
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils

from components.validation import drift
from components.validation.errors import DataValidationError

STATS_FILE = "FeatureStats.pb"
REPORT_FILE = "gate_report.json"
ANOMALIES_FILE = "SchemaDiff.pb"  # tfx/components/example_validator/executor.py
REJECTED_DIR = "rejected"
DEFAULT_SPLIT = "train"


def load_accepted_statistics(uri: str) -> statistics_pb2.DatasetFeatureStatisticsList:
    stats = statistics_pb2.DatasetFeatureStatisticsList()
    stats.ParseFromString(io_utils.read_bytes_file(os.path.join(uri, STATS_FILE)))
    return stats


def _anomaly_findings(input_dict, stats_artifact, schema) -> List:
    """Schema findings per split: the ExampleValidator's, or our own validation."""
    from tensorflow_data_validation.utils import anomalies_util

    findings = []
    anomalies = input_dict.get("anomalies") or []
    if anomalies:
        art = anomalies[0]
        for split in artifact_utils.decode_split_names(art.split_names):
            path = os.path.join(artifact_utils.get_split_uri([art], split), ANOMALIES_FILE)
            findings += drift.anomaly_findings(anomalies_util.load_anomalies_binary(path),
                                               split=split)
        return findings
    import tensorflow_data_validation as tfdv

    for split in artifact_utils.decode_split_names(stats_artifact.split_names):
        stats = stats_artifact_utils.load_statistics(stats_artifact, split).proto()
        findings += drift.anomaly_findings(tfdv.validate_statistics(stats, schema),
                                           split=split)
    return findings


def _merge_splits(findings: List) -> List:
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


class Executor(base_executor.BaseExecutor):

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        started = time.time()
        cfg = json.loads(exec_properties.get("gate_config") or "{}")
        label = cfg.get("label_column")
        split = cfg.get("split") or DEFAULT_SPLIT
        enabled = bool(cfg.get("enabled", True))
        js = float(cfg.get("js_threshold", drift.DEFAULT_JS_THRESHOLD))
        linf = float(cfg.get("linf_threshold", drift.DEFAULT_LINF_THRESHOLD))

        stats_artifact = artifact_utils.get_single_instance(input_dict["statistics"])
        schema_artifact = artifact_utils.get_single_instance(input_dict["schema"])
        schema = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(schema_artifact.uri))
        current = drift.single_dataset(
            stats_artifact_utils.load_statistics(stats_artifact, split).proto())
        rows = int(current.datasets[0].num_examples)

        anomalies = _merge_splits(_anomaly_findings(input_dict, stats_artifact, schema))
        baselines = input_dict.get("baseline_statistics") or []
        baseline = baselines[0] if baselines else None
        measurements: List = []
        if enabled and baseline is not None:
            measurements = drift.drift_measurements(drift.compare(
                current, load_accepted_statistics(baseline.uri), schema, label, js, linf))
        drifted = drift.drifted(measurements)
        findings = drifted + anomalies

        report = {
            "accepted": not findings,
            "findings": [f.to_dict() for f in findings],
            "drift_measurements": [m.to_dict() for m in measurements],
            "drift_checked": bool(enabled and baseline is not None),
            "drift_enabled": enabled,
            "thresholds": {drift.JS: js, drift.LINF: linf},
            "baseline": ({"uri": baseline.uri, "id": baseline.id,
                          "source_statistics_id": baseline.get_int_custom_property(
                              "source_statistics_id")} if baseline is not None else None),
            "statistics": {"uri": stats_artifact.uri, "id": stats_artifact.id, "split": split,
                           "rows": rows},
            "schema": schema_artifact.uri,
            "label_column": label,
            "seconds": round(time.time() - started, 3),
        }
        out = artifact_utils.get_single_instance(output_dict["accepted_statistics"])
        if findings:
            path = self._write_rejected(out.uri, report)
            summary = (f"new data rejected before training, the served model is unchanged: "
                       f"{drift.summary_sentence(findings)}")
            logging.error("DataGate: %s (report: %s)", summary, path)
            raise DataValidationError(summary, report["findings"], path)

        io_utils.write_bytes_file(os.path.join(out.uri, STATS_FILE), current.SerializeToString())
        io_utils.write_string_file(os.path.join(out.uri, REPORT_FILE),
                                   json.dumps(report, indent=2, sort_keys=True))
        out.set_int_custom_property("source_statistics_id", stats_artifact.id)
        out.set_string_custom_property("split", split)
        out.set_string_custom_property("label_column", label or "")
        out.set_int_custom_property("rows", rows)
        if measurements:
            out.set_float_custom_property("max_drift", max(m.value for m in measurements))
        logging.info("DataGate: data accepted (%s)", "drift checked against artifact %d" % (
            baseline.id) if report["drift_checked"] else "no baseline: drift not measured")

    @staticmethod
    def _write_rejected(output_uri: str, report: Dict[str, Any]) -> str:
        """The report of a rejection, beside the artifact directories (TFX
        deletes a failed execution's output directories)."""
        # <pipeline_root>/DataGate/accepted_statistics/<execution id>
        component_dir = os.path.dirname(os.path.dirname(output_uri.rstrip("/")))
        path = os.path.join(component_dir, REJECTED_DIR,
                            os.path.basename(output_uri.rstrip("/")), REPORT_FILE)
        io_utils.write_string_file(path, json.dumps(report, indent=2, sort_keys=True))
        return path
