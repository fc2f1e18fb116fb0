"""`anomaly-pipeline drift --reference OUTPUT_DIR --data new.csv`.

Compares a CSV with the training data of the model served from OUTPUT_DIR,
the way the data gate of `run` would (components/data_gate), without
training anything:

1. the same input checks as `run` (components/input_checks; rows with missing
   or non-finite values are set aside and counted, as in `run`), against the
   served model's feature list;
2. TFDV statistics of the new data, streamed from the CSV by a Beam pipeline;
3. the reference: the training-split statistics the served model's run
   accepted (ML Metadata: OUTPUT_DIR/metadata.sqlite or --metadata-mysql) and
   the reference schema (OUTPUT_DIR/reference/schema.pbtxt, else that run's);
4. schema anomalies + drift (Jensen-Shannon per numeric feature, L-infinity on
   the label when the CSV has it; thresholds from the config's `drift`).

The comparison is written to OUTPUT_DIR/drift/<UTC time>/: statistics.pbtxt/
.json (new data), anomalies.pbtxt/.json (schema anomalies and drift
measurements, TFDV's Anomalies proto), summary.json. The command itself
(printing, exit status) is pipeline/cli/drift.py.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from typing import Any, Dict, List, Optional

from components import input_checks
from components.columns import ColumnRoles
from components.data_gate import artifacts as gate_artifacts
from components.data_gate import drift, reference_schema
from components.data_gate.settings import DriftSettings
from components.errors import InputError
from components.model import layout
from pipeline import lineage
from pipeline.config import DEFAULT_MODEL_NAME

DRIFT_DIR = "drift"


def _report_dir(reference: str) -> str:
    base = os.path.join(reference, DRIFT_DIR)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path, i = os.path.join(base, stamp), 1
    while os.path.exists(path):
        path, i = os.path.join(base, f"{stamp}-{i}"), i + 1
    return path


def _statistics(files: List[str], beam_args: List[str], delimiter: str = ","):
    """TFDV statistics of CSV files (one header each), streamed by Beam."""
    import tempfile

    import tensorflow_data_validation as tfdv
    from apache_beam.options.pipeline_options import PipelineOptions

    with tempfile.TemporaryDirectory(prefix="drift-stats-") as tmp:
        if len(files) == 1:
            location = files[0]
        else:  # one directory, one pattern: link the files side by side
            for i, f in enumerate(files):
                os.symlink(os.path.abspath(f), os.path.join(tmp, f"part-{i:05d}.csv"))
            location = os.path.join(tmp, "part-*.csv")
        return tfdv.generate_statistics_from_csv(
            data_location=location,  # the header of each file is skipped
            delimiter=delimiter,
            output_path=os.path.join(tmp, "stats.tfrecord"),
            pipeline_options=PipelineOptions(["--direct_running_mode=in_memory",
                                              *beam_args]))


def _write_outputs(tmp_dir: str, stats, anomalies, summary: Dict[str, Any]) -> None:
    from google.protobuf import json_format, text_format

    os.makedirs(tmp_dir, exist_ok=True)
    for name, proto in (("statistics", stats), ("anomalies", anomalies)):
        with open(os.path.join(tmp_dir, f"{name}.pbtxt"), "w", encoding="utf-8") as f:
            f.write(text_format.MessageToString(proto))
        with open(os.path.join(tmp_dir, f"{name}.json"), "w", encoding="utf-8") as f:
            f.write(json_format.MessageToJson(proto, preserving_proto_field_name=True))
    with open(os.path.join(tmp_dir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2, sort_keys=True)


def _merged_anomalies(schema_anomalies, drift_anomalies):
    """Schema anomalies of the raw statistics plus TFDV's drift findings."""
    out = type(schema_anomalies)()
    out.CopyFrom(schema_anomalies)
    out.drift_skew_info.extend(drift_anomalies.drift_skew_info)
    for name, info in drift_anomalies.anomaly_info.items():
        reasons = [r for r in info.reason if r.type in drift._DRIFT_REASONS]
        if not reasons:
            continue
        target = out.anomaly_info[name]
        if not target.path.step:
            target.path.CopyFrom(info.path)
            target.severity = info.severity
        target.reason.extend(reasons)
        target.description = " ".join(
            filter(None, [target.description, *[r.description for r in reasons]]))
        target.short_description = target.short_description or reasons[0].short_description
    return out


def _model_dir(output_dir: str, model_name: Optional[str]) -> Optional[str]:
    """The newest served version: of `model_name`, else of the only model, else of
    the default name."""
    base = os.path.join(output_dir, "serving_model")
    if model_name is None:
        names = (sorted(n for n in os.listdir(base) if os.path.isdir(os.path.join(base, n)))
                 if os.path.isdir(base) else [])
        model_name = names[0] if len(names) == 1 else DEFAULT_MODEL_NAME
    return layout.newest_version_dir(os.path.join(base, model_name))


def served_reference(output_dir: str, model_name: Optional[str] = None,
                     connection_config=None, max_missing_share: float = 0.0) -> Dict[str, Any]:
    """The training statistics and schema new data is compared with.

    The AcceptedStatistics of the run that pushed the served model (the newest
    version under `serving_model/<name>/`), found through ML Metadata lineage;
    if that run predates the gate, the newest AcceptedStatistics. The schema:
    the reference schema when there is one, else that run's (relaxed).
    Returns {"statistics", "schema", "label_column", "features",
    "statistics_uri", "statistics_id", "rows", "schema_source", "model",
    "source"}. Raises InputError when OUTPUT_DIR has nothing to compare with.
    """
    output_dir = os.path.abspath(output_dir)
    metadata_path = os.path.join(output_dir, "metadata.sqlite")
    if connection_config is None and not os.path.isfile(metadata_path):
        raise InputError(output_dir, problem=(
            f"no pipeline run in {output_dir} (no metadata.sqlite): run "
            f"`anomaly-pipeline run --output {output_dir}` first"))
    store = lineage.open_store(metadata_path, connection_config)
    model_dir = _model_dir(output_dir, model_name)
    if model_dir is not None:
        layout.verify_model_dir(model_dir)  # a broken served model: exit 2, naming it
    accepted, run_schema, source = None, None, None
    outputs = lineage.pushing_run_outputs(store, model_dir) if model_dir else None
    if outputs:
        schemas = outputs.get("SchemaGen", [])
        run_schema = schemas[0].uri if schemas else None
        gate = outputs.get(gate_artifacts.NODE_ID, [])
        if gate:
            accepted, source = gate[0], "the run that pushed the served model"
    if accepted is None:
        accepted = lineage.newest_live(store, gate_artifacts.ACCEPTED_TYPE)
        if accepted is None:
            raise InputError(output_dir, problem=(
                "no accepted training statistics recorded (no run passed the data gate yet)"))
        source = "the last run whose data passed the gate"
    stats = gate_artifacts.load_accepted_statistics(accepted.uri)
    label = lineage.prop(accepted, "label_column") or None
    ref_schema = reference_schema.schema_path(output_dir)
    if os.path.exists(ref_schema):
        schema, schema_source = reference_schema.read_schema(ref_schema), ref_schema
    else:
        if run_schema is None:
            schema = reference_schema.infer_schema(stats)
            schema_source = "inferred from the reference statistics"
        else:
            schema_source = os.path.join(run_schema, reference_schema.SCHEMA_FILE)
            schema = reference_schema.read_schema(schema_source)
    roles = ColumnRoles(label=label)
    if model_dir is not None:
        roles = ColumnRoles.from_dict(layout.read_metadata(model_dir).get("roles"))
    if not os.path.exists(ref_schema):
        # as the gate's reference schema would be (empty cells are imputed with roles)
        schema = drift.relax_schema(schema, label, roles.passthrough,
                                    max_missing_share if roles.has_roles else 0.0)
    features = [drift.feature_name(f) for f in stats.datasets[0].features
                if drift.feature_name(f) != label]
    return {"statistics": stats, "schema": schema, "label_column": label, "roles": roles,
            "features": features, "statistics_uri": accepted.uri,
            "statistics_id": accepted.id, "rows": int(stats.datasets[0].num_examples),
            "schema_source": schema_source, "model": model_dir, "source": source}


def compare_csv(reference: str, data: str, drift_settings: DriftSettings,
                model_name: Optional[str] = None, beam_args: Optional[List[str]] = None,
                connection_config=None) -> Dict[str, Any]:
    """Runs the comparison and writes REFERENCE/drift/<time>/; returns the summary.

    `connection_config`: the MySQL store of `--metadata-mysql`, else
    REFERENCE/metadata.sqlite. Raises InputError for bad input (missing
    reference included).
    """
    import tensorflow_data_validation as tfdv

    started = time.time()
    reference = os.path.abspath(reference)
    if not os.path.isdir(reference):
        raise InputError(reference, problem="reference output directory not found")
    ref = served_reference(reference, model_name, connection_config,
                           drift_settings.max_missing_share)
    js_threshold, linf_threshold = drift_settings.js_threshold, drift_settings.linf_threshold
    label = ref["label_column"]
    header = input_checks.read_header(data)
    label_here = label if label and label in header else None
    report_dir = _report_dir(reference)
    tmp_dir = report_dir + ".tmp"
    roles = ref["roles"]
    try:
        info = input_checks.check_csv(data, label_column=label_here,
                                      expected_features=ref["features"], mode="train",
                                      quarantine_dir=os.path.join(tmp_dir, "quarantine"),
                                      roles=roles if roles.has_roles else None,
                                      missing="impute" if roles.has_roles else "quarantine")
        stats = drift.single_dataset(_statistics(list(info.clean_files), beam_args or [],
                                                 info.delimiter))
        schema = ref["schema"]
        if label and not label_here:  # scoring data without labels: compare features only
            kept = [f for f in schema.feature if f.name != label]
            del schema.feature[:]
            schema.feature.extend(kept)
        schema_anomalies = tfdv.validate_statistics(stats, schema)
        comparison = drift.compare(stats, ref["statistics"], schema, label_here,
                                   js_threshold, linf_threshold, skip=roles.passthrough)
        measurements = drift.drift_measurements(comparison)
        drifted = drift.drifted(measurements)
        anomalies = drift.anomaly_findings(schema_anomalies, passthrough=roles.passthrough)
        reported = drift.anomaly_findings(schema_anomalies, reported=True,
                                          passthrough=roles.passthrough)
        findings = drifted + anomalies
        summary = {
            "drift": bool(findings),
            "drifted": [m.to_dict() for m in drifted],
            "anomalies": [a.to_dict() for a in anomalies],
            "reported": [a.to_dict() for a in reported],
            "measurements": [m.to_dict() for m in measurements],
            "thresholds": {drift.JS: js_threshold, drift.LINF: linf_threshold},
            "data": os.path.abspath(data),
            "rows": info.rows,
            "quarantined_rows": info.quarantined_rows,
            "label_compared": label_here is not None,
            "reference": {"model": ref["model"], "statistics": ref["statistics_uri"],
                          "rows": ref["rows"], "schema": ref["schema_source"],
                          "source": ref["source"]},
            "report_dir": report_dir,
        }
        _write_outputs(tmp_dir, stats, _merged_anomalies(schema_anomalies, comparison), summary)
        summary["seconds"] = round(time.time() - started, 2)
        os.replace(tmp_dir, report_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return summary
