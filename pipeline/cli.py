"""`anomaly-pipeline`: run the pipeline, score CSVs with a pushed model.

Exit status: 0 success (also when the new model was not blessed), 2 bad input
or usage (one line `error: ...` on stderr), 1 anything else.
"""
import argparse
import contextlib
import json
import logging
import os
import sys
import time
import warnings
from typing import Any, Dict, List, Optional

from pipeline import orchestration_cli  # argparse only; TFX is imported when needed

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input or usage: reported as one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, as for every other bad input
        self.print_usage(sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def _kv(text: str):
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got '{text}'")
    k, v = text.split("=", 1)
    try:
        return k.strip(), float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}': value must be a number") from None


def _int_list(text: str):
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got '{text}'")


def build_parser() -> argparse.ArgumentParser:
    from pipeline.config import DEFAULT_MODEL_NAME, DEFAULT_OUTPUT, PRESETS

    p = _Parser(prog="anomaly-pipeline", description=(
        "TFX autoencoder anomaly detection: validate, standardize, train, threshold and "
        "push a versioned SavedModel (run); flag rows of a CSV with it (score)."))
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("run", help="run the whole pipeline on a CSV file or directory",
                       description="Runs CsvExampleGen -> StatisticsGen -> SchemaGen -> "
                       "ExampleValidator -> Transform -> Trainer -> AnomalyEvaluator -> Pusher. "
                       "Settings: defaults < --preset < --config FILE < flags. The last line "
                       "on stdout is a JSON summary.")
    r.add_argument("--data", required=True,
                   help="CSV file, or directory of CSV files, with a header row; every column "
                        "but the label is a numeric feature")
    r.add_argument("--label-column", help="label column (1 = anomaly, 0 = normal): never a "
                   "model input; training uses normal rows only, and metrics are reported")
    r.add_argument("--output", default=None, help=f"output directory (default {DEFAULT_OUTPUT}/)")
    r.add_argument("--model-name", default=None,
                   help=f"name of the pushed model (default {DEFAULT_MODEL_NAME})")
    r.add_argument("--runner", choices=["local", "beam"], default=None,
                   help="orchestrator: local (LocalDagRunner, default) or beam (BeamDagRunner)")
    r.add_argument("--config", help="JSON file with settings (same keys as the config "
                   "dataclasses in pipeline/config.py, nested: data, model, threshold, ...)")
    r.add_argument("--preset", choices=PRESETS, default=None,
                   help="'seed' reproduces the reference notebook recipe exactly (sigmoid "
                        "output, no early stopping, mean+3*std)")
    m = r.add_argument_group("model")
    m.add_argument("--epochs", type=int, help="training epochs (default 50)")
    m.add_argument("--batch-size", type=int, help="training batch size (default: by data size, "
                   "32 up to 32k training rows, then about 1,000 steps per epoch, at most 4096)")
    m.add_argument("--learning-rate", type=float, help="Adam learning rate (default 0.001)")
    m.add_argument("--hidden-units", type=_int_list,
                   help="comma-separated sizes of hidden layers around the encoding, e.g. 32,16 "
                        "(default none: d -> encoding -> d)")
    m.add_argument("--encoding-dim", type=int,
                   help="encoding size (default round(encoding_ratio * d))")
    m.add_argument("--encoding-ratio", type=float, help="encoding size / features (default 0.7)")
    m.add_argument("--activation", help="hidden activation (default relu)")
    m.add_argument("--output-activation", help="output activation (default linear; the seed "
                   "recipe's sigmoid cannot reproduce negative z-scores)")
    m.add_argument("--no-model-selection", action="store_true",
                   help="train only the configured model; by default, with >= 5 labelled "
                        "anomalies in the eval split, also a denoising and a deeper, narrower "
                        "variant (model.candidates) and keep the highest eval ROC-AUC")
    m.add_argument("--validation-split", type=float,
                   help="share of training rows held out for validation/early stopping "
                        "(default 0.2)")
    m.add_argument("--early-stopping-patience", type=int,
                   help="epochs without validation improvement before stopping, best weights "
                        "kept; 0 disables (default 5)")
    m.add_argument("--seed", type=int, help="random seed (default 42)")
    m.add_argument("--input-noise", type=float,
                   help="std of Gaussian noise added to the z-scored inputs while training "
                        "(denoising autoencoder); 0 disables")
    e = r.add_argument_group("threshold and blessing")
    e.add_argument("--threshold-method",
                   help="auto (default: best_f1 when the eval split holds >= min_anomalies=5 "
                        "labelled anomalies, else mean_std k=3), mean_std (mean + k*std), "
                        "quantile (q), contamination (c), mad (median + k*MAD), best_f1 (needs "
                        "labels), evt (risk)")
    e.add_argument("--threshold-param", type=_kv, action="append", default=[],
                   metavar="NAME=VALUE", help="parameter of the threshold method, e.g. k=3, "
                   "q=0.99, c=0.05 (repeatable)")
    e.add_argument("--eval-ratio", type=float, help="share of rows in the eval split (default 0.2)")
    e.add_argument("--min-roc-auc", type=float,
                   help="do not bless a model whose eval ROC-AUC is lower (needs labels)")
    e.add_argument("--baseline-tolerance", type=float,
                   help="how much worse than the last blessed model a candidate may be (0.01)")
    e.add_argument("--ignore-baseline", action="store_true", default=None,
                   help="bless without comparing with the last blessed model (recorded)")
    x = r.add_argument_group("execution")
    x.add_argument("--beam-arg", action="append", default=[], metavar="ARG",
                   help="Beam pipeline argument passed through, e.g. --beam-arg=--runner=..."
                        " (repeatable)")
    x.add_argument("--no-cache", action="store_true", help="rerun every component")
    x.add_argument("--accept-drift", action="store_true",
                   help="do not stop on drift against the last accepted data (the new data "
                        "then becomes the reference; schema anomalies still stop the run)")
    x.add_argument("--allow-schema-change", action="store_true",
                   help="accept data whose columns differ from the model already served "
                        "under --output (default: refuse with exit 2)")
    x.add_argument("--registry-uri", default=None,
                   help="MLflow tracking/registry URI the pushed model is registered in "
                        "(default sqlite:///<output>/mlflow.db)")
    orchestration_cli.add_run_arguments(r)  # --window, --span-pattern, --metadata-mysql

    s = sub.add_parser("score", help="score a CSV with a pushed model",
                       description="Writes every input column plus reconstruction_error, "
                                   "is_anomaly (0/1) and top_features (the features with the "
                                   "largest shares of the row's error, e.g. "
                                   "'f3:0.52;f7:0.21;f0:0.09'), one output row per input row.")
    s.add_argument("--model", required=True,
                   help="SavedModel directory, a serving_model/<name> directory (its newest "
                        "version is used), or models:/<name>@champion | models:/<name>/<version> "
                        "from the MLflow registry")
    s.add_argument("--input", required=True, help="CSV with the training columns")
    s.add_argument("--output", required=True, help="CSV to write")
    s.add_argument("--batch-size", type=int, default=None,
                   help="rows per chunk: one Beam element and one model call (default 32768)")
    s.add_argument("--registry-uri", default=None,
                   help="MLflow registry URI for a models:/ --model (default $MLFLOW_TRACKING_URI)")
    s.add_argument("--top-features", type=int, default=None, metavar="K",
                   help="features listed per row in the top_features column (default 3; "
                        "0 leaves the column out)")
    s.add_argument("--beam-arg", action="append", default=[], metavar="ARG",
                   help="Beam pipeline argument passed through, e.g. --beam-arg=--runner=..."
                        " (repeatable)")
    orchestration_cli.add_compile_parser(sub)  # compile --target kubeflow-v2
    from pipeline import drift as drift_cmd

    drift_cmd.add_parser(sub)  # drift --reference OUTPUT_DIR --data CSV
    return p


def _overrides(a: argparse.Namespace) -> Dict[str, Any]:
    """Flags that were given, as a nested config dict."""
    model = {k: getattr(a, k) for k in (
        "epochs", "batch_size", "learning_rate", "hidden_units", "encoding_dim",
        "encoding_ratio", "activation", "output_activation", "validation_split",
        "early_stopping_patience", "seed", "input_noise") if getattr(a, k) is not None}
    if getattr(a, "no_model_selection", False):
        model["candidates"] = []
    out: Dict[str, Any] = {"model": model, "data": {"path": a.data}}
    if a.label_column is not None:
        out["data"]["label_column"] = a.label_column
    if a.eval_ratio is not None:
        out["data"]["eval_ratio"] = a.eval_ratio
    thr: Dict[str, Any] = {}
    if a.threshold_method:
        thr["method"] = a.threshold_method
    if a.threshold_param:
        thr["params"] = dict(a.threshold_param)
    if thr:
        out["threshold"] = thr
    ev = {k: getattr(a, k) for k in ("min_roc_auc", "baseline_tolerance", "ignore_baseline")
          if getattr(a, k) is not None}
    if ev:
        out["evaluation"] = ev
    for key in ("output", "model_name", "runner", "preset"):
        if getattr(a, key) is not None:
            out[key] = getattr(a, key)
    if a.beam_arg:
        out["beam_args"] = list(a.beam_arg)
    if a.no_cache:
        out["enable_cache"] = False
    if getattr(a, "accept_drift", False):
        out["drift"] = {"enabled": False}
    if a.registry_uri is not None:
        out["registry_uri"] = a.registry_uri
    orchestration_cli.add_overrides(a, out)
    return out


def _config(a: argparse.Namespace):
    from pipeline import config as config_lib

    file_values = config_lib.load_config_file(a.config) if a.config else {}
    overrides = _overrides(a)
    if file_values.get("threshold", {}).get("method") and "method" in overrides.get(
            "threshold", {}) and "params" not in overrides["threshold"]:
        # A new method on the command line does not inherit the file's params.
        overrides["threshold"]["params"] = {}
    return config_lib.build_config(file_values, overrides)


def _served_features(cfg) -> Optional[List[str]]:
    """Features of the newest model pushed under --output, if any.

    New data with a column missing or extra compared with the served model is
    refused before any work (--allow-schema-change to retrain on a new layout).
    """
    from pipeline.scoring import resolve_model_dir

    if not os.path.isdir(cfg.serving_dir):
        return None
    try:
        model_dir = resolve_model_dir(cfg.serving_dir)
        with open(os.path.join(model_dir, "assets", "model_metadata.json"), encoding="utf-8") as f:
            return list(json.load(f)["features"])
    except Exception:  # noqa: BLE001 - no readable served model: nothing to compare with
        return None


def cmd_run(a: argparse.Namespace) -> int:
    from pipeline import csv_checks

    started = time.time()
    cfg = _config(a)
    os.makedirs(cfg.output_dir, exist_ok=True)
    expected = None if a.allow_schema_change else _served_features(cfg)
    # A directory of span folders: the window's spans are checked (pipeline/spans.py).
    span_plan = orchestration_cli.prepare_span_input(cfg, expected)
    if span_plan is None:
        info = csv_checks.check_csv(cfg.data.path, label_column=cfg.data.label_column,
                                    mode="train", expected_features=expected,
                                    quarantine_dir=os.path.join(cfg.output_dir, "quarantine"))
        files = list(info.clean_files)
        input_base = os.path.dirname(os.path.abspath(files[0]))
        pattern = os.path.basename(files[0]) if len(files) == 1 else "*.csv"
    else:
        info, input_base, pattern = span_plan, span_plan.input_base, span_plan.pattern
    if a.allow_schema_change:  # other columns: the data gate's reference schema goes too
        from components.validation import reference as data_reference

        data_reference.retire_if_columns_changed(cfg.output_dir, getattr(info, "columns", None))

    from pipeline import results
    from pipeline.runners import get_runner

    logging.info("running the pipeline on %s (%d rows)", cfg.data.path, info.rows)
    metadata_conn = orchestration_cli.metadata_for_summary(cfg)  # None = SQLite file
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the summary
        runner = get_runner(cfg.runner)  # imports TFX (~6 s), GIL-bound: not beside prefetch
        if os.environ.get("ANOMALY_PIPELINE_NO_PREFETCH") != "1":
            from pipeline import prefetch

            prefetch.start()  # MLflow and matplotlib, for the Pusher and the report
        backfilled = orchestration_cli.backfill(cfg, span_plan)  # window spans not ingested
        runner.run(cfg, input_base, pattern)
    summary = results.summarize(cfg.metadata_path, metadata_conn, cfg.pipeline_name)
    if span_plan is not None:
        summary["spans"] = orchestration_cli.span_summary(cfg, span_plan, backfilled,
                                                          metadata_conn)
    summary["quarantined_rows"] = info.quarantined_rows
    summary["data_rows"] = info.rows
    summary["output"] = cfg.output_dir
    summary["seconds"] = round(time.time() - started, 2)
    if summary["pushed_model"]:
        print(f"pushed model: {summary['pushed_model']}", file=sys.stderr)
    else:
        print("model not blessed, nothing pushed: " + "; ".join(summary["reasons"]),
              file=sys.stderr)
    if (summary.get("registry") or {}).get("error"):
        print(f"warning: the model is pushed but the registry handoff failed: "
              f"{summary['registry']['error']}", file=sys.stderr)
    from components.validation import reference as data_reference

    # The data gate's result; after the first push, the reference schema.
    summary["data_gate"] = data_reference.after_run(
        cfg.output_dir, cfg.metadata_path, cfg.data.label_column,
        pushed=bool(summary["pushed_model"]), connection_config=metadata_conn,
        pipeline_name=cfg.pipeline_name)
    print(json.dumps(summary, sort_keys=True), flush=True)
    return EXIT_OK


def cmd_score(a: argparse.Namespace) -> int:
    from pipeline import scoring

    if a.batch_size is not None and a.batch_size < 1:
        raise UsageError("--batch-size must be >= 1")
    if a.top_features is not None and a.top_features < 0:
        raise UsageError("--top-features must be >= 0")
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the JSON line
        stats = scoring.score_csv(a.model, a.input, a.output,
                                  batch_size=a.batch_size or scoring.DEFAULT_ROWS_PER_CHUNK,
                                  registry_uri=a.registry_uri, beam_args=a.beam_arg,
                                  top_features=a.top_features)
    print(json.dumps(stats, sort_keys=True), flush=True)
    return EXIT_OK


def main(argv: Optional[List[str]] = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Google client libraries warn about Python 3.10 on every import; TFX 1.16 needs 3.10.
    warnings.filterwarnings("ignore", category=FutureWarning)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    args = build_parser().parse_args(argv)
    from pipeline.config import ConfigError
    from pipeline.csv_checks import InputError

    try:
        from pipeline import drift as drift_cmd

        code = {"run": cmd_run, "score": cmd_score,
                "compile": orchestration_cli.cmd_compile,
                "drift": drift_cmd.cmd_drift}[args.command](args)
    except (UsageError, ConfigError, InputError) as e:
        print(f"error: {e}".replace("\n", " "), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_ERROR
    except Exception as e:  # noqa: BLE001 - last resort: say what failed, keep the trace
        from components.validation.errors import find_in_chain

        rejected = find_in_chain(e)  # the data gate stopped the run (maybe wrapped by Beam)
        if rejected is not None:
            print(f"error: {rejected}".replace("\n", " "), file=sys.stderr)
            return EXIT_USAGE
        logging.exception("anomaly-pipeline failed")
        print(f"error: {type(e).__name__}: {e}".splitlines()[0], file=sys.stderr)
        return EXIT_ERROR
    return code


if __name__ == "__main__":
    sys.exit(main())
