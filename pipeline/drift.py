"""`anomaly-pipeline drift --reference OUTPUT_DIR --data new.csv`.

Compares a CSV with the training data of the model served from OUTPUT_DIR,
the way the data gate of `run` would (components/validation), without
training anything:

1. the same input checks as `run` (pipeline/csv_checks.py; rows with missing
   or non-finite values are set aside and counted, as in `run`), against the
   served model's feature list;
2. TFDV statistics of the new data, streamed from the CSV by a Beam pipeline;
3. the reference: the training-split statistics the served model's run
   accepted (ML Metadata in OUTPUT_DIR/metadata.sqlite) and the reference
   schema (OUTPUT_DIR/reference/schema.pbtxt, else that run's schema);
4. schema anomalies + drift (Jensen-Shannon per numeric feature, L-infinity on
   the label when the CSV has it; thresholds from the config's `drift`).

Prints the drifted features and every distance on stderr, one JSON object as
the last stdout line, and writes the comparison to OUTPUT_DIR/drift/<UTC
time>/: statistics.pbtxt/.json (new data), anomalies.pbtxt/.json (schema
anomalies and drift measurements, TFDV's Anomalies proto), summary.json.

Exit status: 0 no drift, 3 drift or schema anomalies (the gate of `run` would
stop this data; for a scheduler to alert on), 2 bad input or usage, 1 other.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import sys
import time
from typing import Any, Dict, List, Optional

EXIT_DRIFT = 3
DRIFT_DIR = "drift"


def add_parser(sub) -> None:
    d = sub.add_parser(
        "drift", help="compare a CSV with the training data of the served model",
        description="Statistics of --data vs the training data of the model served from "
                    "--reference (an --output directory of `run`). Exit 0: no drift; 3: "
                    "drift or schema anomalies above the thresholds; 2: bad input. The last "
                    "line on stdout is a JSON summary; the TFDV comparison is written to "
                    "REFERENCE/drift/<time>/.")
    d.add_argument("--reference", required=True, metavar="OUTPUT_DIR",
                   help="output directory of `anomaly-pipeline run` (metadata.sqlite, "
                        "serving_model/, reference/)")
    d.add_argument("--data", required=True,
                   help="CSV file or directory of CSV files with the training columns (the "
                        "label column is optional)")
    d.add_argument("--model-name", default=None,
                   help="served model under REFERENCE/serving_model/ (default: the only one, "
                        "else anomaly_detector)")
    d.add_argument("--config", help="JSON config file of `run`; its `drift` thresholds apply")
    d.add_argument("--js-threshold", type=float,
                   help="Jensen-Shannon divergence above which a numeric feature has drifted "
                        "(default 0.1)")
    d.add_argument("--linf-threshold", type=float,
                   help="L-infinity distance above which the label has drifted (default 0.1)")
    d.add_argument("--beam-arg", action="append", default=[], metavar="ARG",
                   help="Beam pipeline argument for the statistics pass (repeatable)")


def _thresholds(a: argparse.Namespace):
    from pipeline import config as config_lib

    file_values = config_lib.load_config_file(a.config) if a.config else {}
    flags = {k: v for k, v in (("js_threshold", a.js_threshold),
                               ("linf_threshold", a.linf_threshold)) if v is not None}
    return config_lib.build_config(file_values, {"drift": flags} if flags else {}).drift


def _report_dir(reference: str) -> str:
    base = os.path.join(reference, DRIFT_DIR)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path, i = os.path.join(base, stamp), 1
    while os.path.exists(path):
        path, i = os.path.join(base, f"{stamp}-{i}"), i + 1
    return path


def _statistics(files: List[str], beam_args: List[str]):
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
    from components.validation import drift

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


def compare_csv(reference: str, data: str, model_name: Optional[str] = None,
                js_threshold: float = 0.1, linf_threshold: float = 0.1,
                beam_args: Optional[List[str]] = None) -> Dict[str, Any]:
    """Runs the comparison and writes REFERENCE/drift/<time>/; returns the summary.

    Raises csv_checks.InputError for bad input (missing reference included).
    """
    from components.validation import drift
    from components.validation import reference as ref_lib
    from pipeline import csv_checks

    started = time.time()
    reference = os.path.abspath(reference)
    if not os.path.isdir(reference):
        raise csv_checks.InputError(reference, problem="reference output directory not found")
    try:
        ref = ref_lib.served_reference(reference, model_name)
    except ref_lib.ReferenceNotFound as e:
        raise csv_checks.InputError(reference, problem=str(e)) from None
    label = ref["label_column"]
    header = csv_checks.read_header(data)
    label_here = label if label and label in header else None
    report_dir = _report_dir(reference)
    tmp_dir = report_dir + ".tmp"
    try:
        info = csv_checks.check_csv(data, label_column=label_here,
                                    expected_features=ref["features"], mode="train",
                                    quarantine_dir=os.path.join(tmp_dir, "quarantine"))
        stats = drift.single_dataset(_statistics(list(info.clean_files), beam_args or []))
        import tensorflow_data_validation as tfdv

        schema = ref["schema"]
        if label and not label_here:  # scoring data without labels: compare features only
            kept = [f for f in schema.feature if f.name != label]
            del schema.feature[:]
            schema.feature.extend(kept)
        schema_anomalies = tfdv.validate_statistics(stats, schema)
        comparison = drift.compare(stats, ref["statistics"], schema, label_here,
                                   js_threshold, linf_threshold)
        measurements = drift.drift_measurements(comparison)
        drifted = drift.drifted(measurements)
        anomalies = drift.anomaly_findings(schema_anomalies)
        findings = drifted + anomalies
        summary = {
            "drift": bool(findings),
            "drifted": [m.to_dict() for m in drifted],
            "anomalies": [a.to_dict() for a in anomalies],
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


def _print_human(summary: Dict[str, Any]) -> None:
    ref = summary["reference"]
    err = sys.stderr
    print(f"compared {summary['rows']} rows of {summary['data']} with the training data of "
          f"{ref['model'] or 'the last accepted run'} ({ref['rows']} rows)", file=err)
    for f in summary["drifted"]:
        print(f"  DRIFT    {f['feature']}: {f['text']}", file=err)
    for f in summary["anomalies"]:
        print(f"  ANOMALY  {f['feature']}: {f['text']}", file=err)
    flagged = {f["feature"] for f in summary["drifted"]}
    for m in summary["measurements"]:
        if m["feature"] not in flagged:
            print(f"  ok       {m['feature']}: {m['text']}", file=err)
    if summary["quarantined_rows"]:
        print(f"  ({summary['quarantined_rows']} rows with missing or non-finite values "
              f"set aside, see {summary['report_dir']}/quarantine/)", file=err)
    verdict = ("drift: the data gate of `run` would stop this data" if summary["drift"]
               else "no drift above the thresholds")
    print(f"{verdict}; comparison written to {summary['report_dir']}", file=err)


def cmd_drift(a: argparse.Namespace) -> int:
    cfg = _thresholds(a)
    logging.getLogger().setLevel(logging.WARNING)  # Beam's INFO lines would bury the result
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the JSON line
        summary = compare_csv(a.reference, a.data, a.model_name, cfg.js_threshold,
                              cfg.linf_threshold, a.beam_arg)
    _print_human(summary)
    print(json.dumps(summary, sort_keys=True), flush=True)
    return EXIT_DRIFT if summary["drift"] else 0
