"""`anomaly-pipeline drift --reference OUTPUT_DIR --data new.csv` (the work: pipeline/drift_check.py).

Prints the drifted features and every distance on stderr, one JSON object as
the last stdout line. Exit status: 0 no drift, 3 drift or schema anomalies
(the gate of `run` would stop this data; for a scheduler to alert on), 2 bad
input or usage, 1 other.
"""
import argparse
import contextlib
import json
import os
import sys
from typing import Any, Dict

from pipeline import config as config_lib
from pipeline.cli.common import (BEAM_ARG, EXIT_OK, METADATA_MYSQL, SettingFlag, add_flags,
                                 add_verbose, expected_error, overrides)

EXIT_DRIFT = 3
FLAGS = (
    SettingFlag("--js-threshold", "drift.js_threshold", "Jensen-Shannon divergence above which "
                "a numeric feature has drifted", type=float),
    SettingFlag("--linf-threshold", "drift.linf_threshold", "L-infinity distance above which "
                "the label or a categorical column has drifted", type=float),
    BEAM_ARG,
    METADATA_MYSQL,
)


def add_parser(sub) -> None:
    d = sub.add_parser(
        "drift", help="compare a CSV with the training data of the served model",
        description="Statistics of --data vs the training data of the model served from "
                    "--reference (an --output directory of `run`). Exit 0: no drift; 3: "
                    "drift or schema anomalies above the thresholds; 2: bad input. The last "
                    "line on stdout is a JSON summary; the TFDV comparison is written to "
                    "REFERENCE/drift/<time>/.")
    d.set_defaults(command_fn=cmd)
    d.add_argument("--reference", required=True, metavar="OUTPUT_DIR",
                   help="output directory of `anomaly-pipeline run` (metadata.sqlite, "
                        "serving_model/, reference/)")
    d.add_argument("--data", required=True,
                   help="CSV file or directory of CSV files with the training columns (the "
                        "label column is optional)")
    d.add_argument("--model-name", default=None,
                   help=f"served model under REFERENCE/serving_model/ (default: the only one, "
                        f"else {config_lib.DEFAULT_MODEL_NAME})")
    d.add_argument("--config", help="JSON config file of `run`; its `drift` thresholds and "
                                    "metadata_mysql apply")
    add_flags(d, FLAGS)
    add_verbose(d)


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


def log_file(reference: str) -> str:
    """REFERENCE/logs/drift-<time>.log; a scratch file when REFERENCE is no directory (the
    error then names it: nothing is created there)."""
    from pipeline import console

    if os.path.isdir(reference):
        return console.log_file(os.path.join(reference, "logs"), "drift-")
    return console.scratch_log_file("drift")


def cmd(a: argparse.Namespace) -> int:
    from pipeline import console

    cfg = config_lib.load(a.config, overrides(a, FLAGS))
    log = log_file(a.reference)
    with console.Session(log, verbose=a.verbose, expected=expected_error):
        from pipeline import drift_check, metadata  # TF and Beam: inside the session

        connection = metadata.connection_config(cfg) if cfg.metadata_mysql else None
        with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the JSON line
            summary = drift_check.compare_csv(a.reference, a.data, cfg.drift,
                                              model_name=a.model_name,
                                              beam_args=list(cfg.beam_args),
                                              connection_config=connection)
    summary["log"] = log
    _print_human(summary)
    print(json.dumps(summary, sort_keys=True), flush=True)
    return EXIT_DRIFT if summary["drift"] else EXIT_OK
