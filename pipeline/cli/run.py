"""`anomaly-pipeline run`: check the input, run the DAG, print the summary as the last line."""
import argparse
import contextlib
import json
import logging
import os
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

from components.columns import ColumnRoles
from components.evaluator.thresholds import DEFAULT_PARAMS, METHODS
from components.model.settings import AUTO_BATCH_MIN, AUTO_BATCH_STEPS
from pipeline import config as config_lib
from pipeline.cli.common import (BEAM_ARG, COLUMN_FLAGS, CONFIG_FILE_HELP, EXIT_OK,
                                 METADATA_MYSQL, SPAN_FLAGS, SettingFlag, UsageError, add_flags,
                                 add_verbose, expected_error, int_list, kv_number, overrides)

LOG_DIR = "logs"  # <output>/logs/<YYYYmmdd-HHMMSS>.log, one per run (summary key "log")

_AUTO = DEFAULT_PARAMS["auto"]
GENERAL = (
    SettingFlag("--data", "data.path", "CSV file, directory of CSV files, or directory of span "
                "folders, with a header row; each column's role (numeric, categorical, "
                "passthrough) is inferred and shown in the summary", default_text="required",
                required=True),
    SettingFlag("--label-column", "data.label_column", "label column (1 = anomaly, 0 = normal): "
                "never a model input; training uses normal rows only, metrics are reported"),
    SettingFlag("--output", "output", "output directory: pipeline root, metadata, pushed models"),
    SettingFlag("--model-name", "model_name", "name of the pushed model under serving_model/"),
    SettingFlag("--runner", "runner", "orchestrator: local (LocalDagRunner) or beam "
                "(BeamDagRunner)", choices=config_lib.RUNNERS),
    SettingFlag("--preset", "preset", "'seed' reproduces the reference notebook recipe exactly "
                "(sigmoid output, no early stopping, mean+3*std)", choices=config_lib.PRESETS),
)
MODEL = (
    SettingFlag("--epochs", "model.epochs", "training epochs (an upper bound with early "
                "stopping)", type=int),
    SettingFlag("--batch-size", "model.batch_size", "training batch size", type=int,
                default_text=f"by data size: {AUTO_BATCH_MIN} up to "
                             f"{AUTO_BATCH_MIN * AUTO_BATCH_STEPS:,} training rows, then "
                             f"~{AUTO_BATCH_STEPS:,} steps per epoch, at most "
                             f"model.max_auto_batch_size="
                             f"{config_lib.default('model.max_auto_batch_size')}"),
    SettingFlag("--learning-rate", "model.learning_rate", "Adam learning rate", type=float),
    SettingFlag("--hidden-units", "model.hidden_units", "comma-separated sizes of hidden layers "
                "around the encoding, e.g. 32,16", type=int_list),
    SettingFlag("--encoding-dim", "model.encoding_dim", "encoding size", type=int,
                default_text="round(encoding_ratio * d)"),
    SettingFlag("--encoding-ratio", "model.encoding_ratio", "encoding size / features",
                type=float),
    SettingFlag("--activation", "model.activation", "hidden activation (a Keras name)"),
    SettingFlag("--output-activation", "model.output_activation", "output activation (the seed "
                "recipe's sigmoid cannot reproduce negative z-scores)"),
    SettingFlag("--no-model-selection", "model.candidates", "train only the configured model; "
                f"by default, with >= {config_lib.default('model.select_min_anomalies')} labelled "
                "anomalies in the eval split, every candidate of model.candidates is fitted and "
                "the highest eval ROC-AUC kept", store=[]),
    SettingFlag("--validation-split", "model.validation_split", "share of training rows held "
                "out for validation and early stopping", type=float),
    SettingFlag("--early-stopping-patience", "model.early_stopping_patience", "epochs without "
                "validation improvement before stopping, best weights kept; 0 disables",
                type=int),
    SettingFlag("--seed", "model.seed", "random seed", type=int),
    SettingFlag("--input-noise", "model.input_noise", "std of Gaussian noise added to the "
                "z-scored inputs while training (denoising); 0 disables", type=float),
)
EVALUATION = (
    SettingFlag("--threshold-method", "threshold.method", "one of " + ", ".join(sorted(METHODS))
                + f"; auto = best_f1 with >= min_anomalies={_AUTO['min_anomalies']:g} labelled "
                f"eval anomalies, fewer: mean_std with k={_AUTO['k']:g} of the normal rows, no "
                f"labels: mad with mad_k={_AUTO['mad_k']:g}", metavar="NAME"),
    SettingFlag("--threshold-param", "threshold.params", "parameter of the threshold method, "
                "e.g. k=3, q=0.995, c=0.02 (repeatable)", type=kv_number, action="append",
                metavar="NAME=VALUE", convert=dict, default_text="the method's defaults"),
    SettingFlag("--eval-ratio", "data.eval_ratio", "share of rows in the eval split",
                type=float),
    SettingFlag("--min-roc-auc", "evaluation.min_roc_auc", "do not bless a model whose eval "
                "ROC-AUC is lower (needs labels)", type=float),
    SettingFlag("--baseline-tolerance", "evaluation.baseline_tolerance", "how much worse than "
                "the last blessed model a candidate may be", type=float),
    SettingFlag("--ignore-baseline", "evaluation.ignore_baseline", "bless without comparing "
                "with the last blessed model (recorded in the evaluation)", store=True),
)
EXECUTION = (
    BEAM_ARG,
    SettingFlag("--no-cache", "enable_cache", "rerun every component instead of reusing ML "
                "Metadata's cache", store=False),
    SettingFlag("--accept-drift", "drift.enabled", "do not stop on drift against the last "
                "accepted data (that data then becomes the reference; schema anomalies still "
                "stop the run)", store=False),
    SettingFlag("--registry-uri", "registry_uri", "MLflow tracking/registry URI the pushed "
                "model is registered in", default_text="sqlite:///<output>/mlflow.db"),
    SettingFlag("--wait", "lock_wait", "seconds to wait while another run holds --output "
                "(its lock file <output>/.lock names it); 0: stop at once with exit 2",
                type=float, metavar="SECONDS"),
    *SPAN_FLAGS,
    METADATA_MYSQL,
)
FLAGS = GENERAL + COLUMN_FLAGS + MODEL + EVALUATION + EXECUTION


def add_parser(sub) -> None:
    r = sub.add_parser(
        "run", help="run the whole pipeline on a CSV file or directory",
        description="Runs CsvExampleGen -> StatisticsGen -> SchemaGen -> ExampleValidator -> "
                    "DataGate -> Transform -> Trainer -> AnomalyEvaluator -> Pusher. Settings: "
                    "defaults < --preset < --config FILE < flags. The last line on stdout is "
                    "a JSON summary.")
    r.set_defaults(command_fn=cmd)
    g = r.add_argument_group("data and output")
    add_flags(g, GENERAL)
    r.add_argument("--config", help=CONFIG_FILE_HELP)
    add_flags(r.add_argument_group("columns (components/columns.py: the rules)"), COLUMN_FLAGS)
    add_flags(r.add_argument_group("model"), MODEL)
    add_flags(r.add_argument_group("threshold and blessing"), EVALUATION)
    x = r.add_argument_group("execution")
    add_flags(x, EXECUTION)
    x.add_argument("--allow-schema-change", action="store_true",
                   help="accept data whose columns differ from the model already served "
                        "under --output (default: refuse with exit 2)")
    add_verbose(x)


def build(a: argparse.Namespace) -> config_lib.PipelineConfig:
    values = overrides(a, FLAGS)
    if "://" in str(values.get("output") or ""):
        raise UsageError(f"--output {values['output']}: `run` needs a local directory (its "
                         f"metadata and summary live there); to run on object storage, "
                         f"`compile --target kubeflow-v2 --pipeline-root {values['output']}`")
    return config_lib.load(a.config, values)


def served_model(cfg) -> Tuple[Optional[List[str]], Optional[ColumnRoles]]:
    """(every column but the label, the column roles) of the newest model pushed under
    --output; (None, None) when there is none.

    New data with a column missing or extra compared with the served model is
    refused before any work (--allow-schema-change to retrain on a new layout),
    and a retrain keeps the served model's roles (pipeline/inputs.py). A served
    model whose metadata cannot be read is an error naming it: the guard must
    not switch itself off.
    """
    from components.errors import InputError
    from components.model import layout

    newest = layout.newest_version_dir(cfg.serving_dir)
    if newest is None:
        return None, None
    if layout.read_checksums(newest) is not None:  # pushed with checksums: check them
        layout.verify_model_dir(newest)
    try:
        metadata = layout.read_metadata(newest)
        roles = ColumnRoles.from_dict(metadata.get("roles"))
        return list(metadata["features"]) + list(roles.passthrough), roles
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(layout.asset_path(newest, layout.METADATA_FILE), problem=(
            f"the served model's metadata cannot be read ({type(e).__name__}: {e}); repair or "
            f"remove that version, or pass --allow-schema-change")) from None


def quarantine_files(cfg, plan) -> List[str]:
    """The quarantine files this run's input checks wrote (none when no row was set aside)."""
    from components.input_checks.quarantine import QUARANTINE_FILE
    from pipeline import inputs

    if not plan.quarantined_rows:
        return []
    dirs = ([os.path.join(cfg.output_dir, inputs.SPAN_QUARANTINE_DIR, s.name)
             for s in plan.selected] if plan.span_pattern is not None
            else [os.path.join(cfg.output_dir, inputs.QUARANTINE_DIR)])
    return [p for p in (os.path.join(d, QUARANTINE_FILE) for d in dirs) if os.path.isfile(p)]


def cmd(a: argparse.Namespace) -> int:
    from pipeline import console
    from pipeline.cli import guard

    started = time.time()
    cfg = build(a)
    os.makedirs(cfg.output_dir, exist_ok=True)
    log = console.log_file(os.path.join(cfg.output_dir, LOG_DIR))
    with console.Session(log, verbose=a.verbose, expected=expected_error):
        with guard.exclusive(cfg) as run_id:  # one run per --output (pipeline/cli/guard.py)
            summary = _run(a, cfg, started, log, run_id)
    print(json.dumps(summary, sort_keys=True), flush=True)
    return EXIT_OK


def _run(a: argparse.Namespace, cfg: config_lib.PipelineConfig, started: float, log: str,
         run_id: str) -> Dict[str, Any]:
    from components import progress
    from pipeline import inputs

    expected, served_roles = (None, None) if a.allow_schema_change else served_model(cfg)
    plan = inputs.plan(cfg, quarantine=True, expected_features=expected,
                       served_roles=served_roles)
    for note in plan.notes:
        progress.say("note: %s", note)
    if a.allow_schema_change:  # other columns: the data gate's reference schema goes too
        from components.data_gate import reference_schema

        reference_schema.retire_if_columns_changed(cfg.output_dir, plan.columns)
    quarantined = quarantine_files(cfg, plan)
    empty = sum(plan.missing_by_column.values())
    progress.say("%s: %s rows checked%s%s", cfg.data.path, f"{plan.rows:,}",
                 f", {empty:,} empty cells imputed" if empty else "",
                 f", {plan.quarantined_rows:,} rows set aside in "
                 f"{', '.join(quarantined) or 'the quarantine'}" if plan.quarantined_rows else "")
    progress.say("columns: %s", _roles_line(plan.roles))
    progress.say("full log: %s", log)

    from pipeline import lineage, metadata, run_report, summary as summary_lib
    from pipeline.runners import get_runner

    logging.info("running the pipeline on %s (%d rows)", cfg.data.path, plan.rows)
    connection = metadata.connection_config(cfg)
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the summary
        runner = get_runner(cfg.runner)  # imports TFX (~6 s), GIL-bound: not beside prefetch
        if os.environ.get("ANOMALY_PIPELINE_NO_PREFETCH") != "1":
            from pipeline import prefetch

            prefetch.start()  # MLflow and matplotlib, for the Pusher and the report
        backfilled = inputs.backfill(cfg, plan, connection)  # window spans not ingested
        runner.run(cfg, plan, run_id=run_id)
    mysql = connection if cfg.metadata_mysql else None
    record = lineage.RunRecord(cfg.metadata_path, mysql, cfg.pipeline_name, run_id=run_id)
    summary: Dict[str, Any] = summary_lib.summarize(record, cfg.output_dir)
    if plan.span_pattern is not None:
        summary["spans"] = inputs.span_summary(cfg, plan, backfilled, record)
    summary["quarantined_rows"] = plan.quarantined_rows
    summary["quarantine_files"] = quarantined
    summary["data_rows"] = plan.rows
    summary.update(plan.summary())
    summary["output"] = cfg.output_dir
    summary["log"] = log
    # The data gate's result; after the first push, the reference schema.
    summary["data_gate"] = summary_lib.data_gate_summary(
        record, cfg.output_dir, cfg.data.label_column, pushed=bool(summary["pushed_model"]),
        roles=plan.roles, max_missing_share=(
            cfg.drift.max_missing_share if cfg.columns.missing == "impute" else 0.0))
    summary["seconds"] = round(time.time() - started, 2)
    # The published report.html gets what only the end of the run knows (never fails).
    run_report.add_run_section(summary.get("report"), summary, cfg.data.path)
    _say_outcome(summary)
    return summary


def _roles_line(roles) -> str:
    def names(cols):
        return ", ".join(cols[:6]) + (f", ... ({len(cols) - 6} more)" if len(cols) > 6 else "")

    parts = [f"{len(getattr(roles, r))} {r} ({names(list(getattr(roles, r)))})"
             for r in ("numeric", "categorical", "passthrough") if getattr(roles, r)]
    return "; ".join(parts) + " (why: the summary's columns.why)"


def _say_outcome(summary: Dict[str, Any]) -> None:
    """The run's outcome in a few lines on the terminal, before the JSON line."""
    from components import progress

    registry = summary.get("registry") or {}
    if summary["pushed_model"]:
        where = (f" (registry {registry['name']} version {registry['version']}"
                 + (", champion" if registry.get("champion") == registry.get("version") else "")
                 + ")" if registry.get("version") else "")
        progress.say("pushed model: %s%s", summary["pushed_model"], where)
    else:
        progress.say("model not blessed, nothing pushed: %s", "; ".join(summary["reasons"]))
    if registry.get("error"):
        progress.say("warning: the model is pushed but the registry handoff failed: %s",
                     registry["error"], level=logging.WARNING)
    for text in summary.get("warnings") or []:
        progress.say("warning: %s", text, level=logging.WARNING)
    if summary.get("report"):
        progress.say("report: %s", summary["report"])
