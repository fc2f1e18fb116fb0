"""DataGate executor: unpack artifacts, validate, then accept or raise.

The judgement is TFX-free (`gate.judge`, `drift.py`); this module only reads
and writes artifacts.
"""
import json
import logging
import os
import time
from typing import Any, Dict, List, Optional

from tfx import types
from tfx.components.statistics_gen import stats_artifact_utils
from tfx.dsl.components.base import base_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils

from components import settings
from components.columns import ColumnRoles
from components.data_gate import artifacts, drift, gate
from components.data_gate.errors import DataValidationError
from components.data_gate.settings import COMPARED_SPLIT, DriftSettings

REJECTED_DIR = "rejected"
ANOMALIES_FILE = "SchemaDiff.pb"  # tfx/components/example_validator/executor.py


def _anomaly_findings(input_dict, stats_artifact, schema, reported: bool,
                      passthrough) -> List:
    """Schema findings per split (the ExampleValidator's, or our own validation): those
    that stop a run, or with `reported` those only reported."""
    from tensorflow_data_validation.utils import anomalies_util

    findings = []
    anomalies = input_dict.get("anomalies") or []
    if anomalies:
        art = anomalies[0]
        for split in artifact_utils.decode_split_names(art.split_names):
            path = os.path.join(artifact_utils.get_split_uri([art], split), ANOMALIES_FILE)
            findings += drift.anomaly_findings(anomalies_util.load_anomalies_binary(path),
                                               split=split, reported=reported,
                                               passthrough=passthrough)
        return findings
    import tensorflow_data_validation as tfdv

    for split in artifact_utils.decode_split_names(stats_artifact.split_names):
        stats = stats_artifact_utils.load_statistics(stats_artifact, split).proto()
        findings += drift.anomaly_findings(tfdv.validate_statistics(stats, schema),
                                           split=split, reported=reported,
                                           passthrough=passthrough)
    return findings


def parse_config(text: Optional[str]):
    """(ColumnRoles, DriftSettings) from `gate_config`; what is not given takes the defaults."""
    cfg = json.loads(text or "{}")
    return (ColumnRoles.from_dict(cfg.get("columns")),
            settings.from_dict(DriftSettings, cfg.get("drift") or {}))


class Executor(base_executor.BaseExecutor):

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        started = time.time()
        roles, drift_settings = parse_config(exec_properties.get("gate_config"))

        stats_artifact = artifact_utils.get_single_instance(input_dict["statistics"])
        schema_artifact = artifact_utils.get_single_instance(input_dict["schema"])
        schema = io_utils.SchemaReader().read(io_utils.get_only_uri_in_dir(schema_artifact.uri))
        current = drift.single_dataset(
            stats_artifact_utils.load_statistics(stats_artifact, COMPARED_SPLIT).proto())
        baselines = input_dict.get("baseline_statistics") or []
        baseline = baselines[0] if baselines else None
        report = gate.judge(
            current, schema,
            _anomaly_findings(input_dict, stats_artifact, schema, False, roles.passthrough),
            roles, drift_settings,
            baseline=(artifacts.load_accepted_statistics(baseline.uri)
                      if baseline is not None else None), started=started,
            reported=_anomaly_findings(input_dict, stats_artifact, schema, True,
                                       roles.passthrough))
        report.update({
            "baseline": ({"uri": baseline.uri, "id": baseline.id,
                          "source_statistics_id": baseline.get_int_custom_property(
                              "source_statistics_id")} if baseline is not None else None),
            "statistics": {"uri": stats_artifact.uri, "id": stats_artifact.id,
                           "split": COMPARED_SPLIT, "rows": report["rows"]},
            "schema": schema_artifact.uri,
        })
        out = artifact_utils.get_single_instance(output_dict["accepted_statistics"])
        if not report["accepted"]:
            path = self._write_rejected(out.uri, report)
            summary = (f"new data rejected before training, the served model is unchanged: "
                       f"{report['summary']}")
            logging.error("DataGate: %s (report: %s)", summary, path)
            raise DataValidationError(summary, report["findings"], path)

        io_utils.write_bytes_file(os.path.join(out.uri, artifacts.STATS_FILE),
                                  current.SerializeToString())
        io_utils.write_string_file(os.path.join(out.uri, artifacts.REPORT_FILE),
                                   json.dumps(report, indent=2, sort_keys=True))
        out.set_int_custom_property("source_statistics_id", stats_artifact.id)
        out.set_string_custom_property("split", COMPARED_SPLIT)
        out.set_string_custom_property("label_column", roles.label or "")
        out.set_int_custom_property("rows", report["rows"])
        if report["max_drift"] is not None:
            out.set_float_custom_property("max_drift", report["max_drift"])
        logging.info("DataGate: data accepted (%s)", "drift checked against artifact %d" % (
            baseline.id) if report["drift_checked"] else "no baseline: drift not measured")

    @staticmethod
    def _write_rejected(output_uri: str, report: Dict[str, Any]) -> str:
        """The report of a rejection, beside the artifact directories (TFX
        deletes a failed execution's output directories)."""
        # <pipeline_root>/DataGate/accepted_statistics/<execution id>
        component_dir = os.path.dirname(os.path.dirname(output_uri.rstrip("/")))
        path = os.path.join(component_dir, REJECTED_DIR,
                            os.path.basename(output_uri.rstrip("/")), artifacts.REPORT_FILE)
        io_utils.write_string_file(path, json.dumps(report, indent=2, sort_keys=True))
        return path
