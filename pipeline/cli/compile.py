"""`anomaly-pipeline compile --target kubeflow-v2`: the KFP v2 spec of the same DAG `run` runs."""
import argparse
import contextlib
import json
import sys

from pipeline import config as config_lib
from pipeline.cli.common import (BEAM_ARG, COLUMN_FLAGS, CONFIG_FILE_HELP, EXIT_OK, SPAN_FLAGS,
                                 SettingFlag, UsageError, add_flags, add_verbose, expected_error,
                                 overrides)
from pipeline.runners.kubeflow_v2 import DEFAULT_IMAGE, TARGETS

FLAGS = (
    SettingFlag("--data", "data.path", "CSV file, directory of CSVs, or directory of span "
                "folders, as the pipeline's containers see it (e.g. gs://bucket/data/)",
                required=True),
    SettingFlag("--pipeline-root", "output", "where runs write (e.g. gs://bucket/anomaly): "
                "<URI>/pipeline_root/ holds the artifacts, <URI>/serving_model/<name>/ the "
                "pushed models", metavar="URI", required=True),
    SettingFlag("--label-column", "data.label_column", "label column (1 = anomaly)"),
    SettingFlag("--model-name", "model_name", "name of the pushed model"),
    SettingFlag("--epochs", "model.epochs", "training epochs", type=int),
    SettingFlag("--registry-uri", "registry_uri", "MLflow tracking URI reachable from the "
                "containers (the default, sqlite under the pipeline root, does not work on "
                "object storage)"),
    BEAM_ARG,
    SettingFlag("--no-cache", "enable_cache", "disable Vertex/KFP caching", store=False),
    *SPAN_FLAGS,
    *COLUMN_FLAGS,
)


def add_parser(sub) -> None:
    c = sub.add_parser(
        "compile", help="compile the pipeline for an orchestrator (Kubeflow Pipelines v2 / "
                        "Vertex AI)",
        description="Writes the KFP v2 PipelineJob spec of the same DAG `run` runs. Nothing is "
                    "read from --data or --pipeline-root: they are written into the spec.")
    c.set_defaults(command_fn=cmd)
    c.add_argument("--target", required=True, choices=TARGETS)
    c.add_argument("--output", required=True, metavar="FILE.json", help="spec file to write")
    c.add_argument("--image", default=DEFAULT_IMAGE,
                   help=f"container image with this project installed (default {DEFAULT_IMAGE}, "
                        f"a placeholder)")
    c.add_argument("--display-name", default=None, help="pipeline display name")
    c.add_argument("--config", help=CONFIG_FILE_HELP)
    add_flags(c, FLAGS)
    add_verbose(c)


def build(a: argparse.Namespace) -> config_lib.PipelineConfig:
    return config_lib.load(a.config, overrides(a, FLAGS))


def cmd(a: argparse.Namespace) -> int:
    from pipeline import console
    from pipeline.runners import kubeflow_v2

    cfg = build(a)
    log = console.scratch_log_file("compile")
    with console.Session(log, verbose=a.verbose, expected=expected_error):
        try:
            with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the JSON line
                result = kubeflow_v2.compile_pipeline(cfg, a.output, image=a.image,
                                                      display_name=a.display_name)
        except kubeflow_v2.CompileError as e:
            raise UsageError(str(e)) from None
    result["log"] = log
    print(f"wrote {result['output']}", file=sys.stderr)
    print(json.dumps(result, sort_keys=True), flush=True)
    return EXIT_OK
