"""The command-line parts of scheduling and scale-out (hooked into pipeline/cli.py):
`run --window/--span-pattern/--metadata-mysql`, and `compile --target kubeflow-v2`.
"""
import argparse
import json
import sys
from typing import Any, Dict


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got '{text}'") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def add_span_arguments(group) -> None:
    group.add_argument("--window", type=_positive_int, default=None, metavar="K",
                       help="with --data a directory of span folders: Transform and the "
                            "Trainer read the newest K spans (default 1: the newest only)")
    group.add_argument("--span-pattern", default=None, metavar="PATTERN",
                       help="span folders under --data as CsvExampleGen reads them, e.g. "
                            "'span-{SPAN}/*.csv' or '{YYYY}-{MM}-{DD}/*.csv' (default: detected "
                            "from the folder names)")


def add_run_arguments(run_parser) -> None:
    g = run_parser.add_argument_group("spans and metadata")
    add_span_arguments(g)
    g.add_argument("--metadata-mysql", default=None, metavar="HOST[:PORT]/DB",
                   help="ML Metadata in MySQL instead of <output>/metadata.sqlite; account from "
                        "$ANOMALY_PIPELINE_MYSQL_USER and $ANOMALY_PIPELINE_MYSQL_PASSWORD")


def add_overrides(a: argparse.Namespace, out: Dict[str, Any],
                  remote_output_ok: bool = False) -> Dict[str, Any]:
    """Adds the flags of `add_run_arguments`/`add_span_arguments` that were given."""
    if not remote_output_ok and "://" in str(out.get("output") or ""):
        from pipeline.cli import UsageError

        raise UsageError(f"--output {out['output']}: `run` needs a local directory (its "
                         f"metadata and summary live there); to run on object storage, "
                         f"`compile --target kubeflow-v2 --pipeline-root {out['output']}`")
    data = out.setdefault("data", {})
    if getattr(a, "window", None) is not None:
        data["window"] = a.window
    if getattr(a, "span_pattern", None) is not None:
        data["span_pattern"] = a.span_pattern
    if getattr(a, "metadata_mysql", None) is not None:
        out["metadata_mysql"] = a.metadata_mysql
    return out


def add_compile_parser(sub) -> None:
    from pipeline.runners.kubeflow_v2 import DEFAULT_IMAGE, TARGETS

    c = sub.add_parser(
        "compile", help="compile the pipeline for an orchestrator (Kubeflow Pipelines v2 / "
                        "Vertex AI)",
        description="Writes the KFP v2 PipelineJob spec of the same DAG `run` runs. Nothing is "
                    "read from --data or --pipeline-root: they are written into the spec.")
    c.add_argument("--target", required=True, choices=TARGETS)
    c.add_argument("--output", required=True, metavar="FILE.json", help="spec file to write")
    c.add_argument("--data", required=True,
                   help="CSV file, directory of CSVs, or directory of span folders, as the "
                        "pipeline's containers see it (e.g. gs://bucket/data/)")
    c.add_argument("--pipeline-root", required=True, metavar="URI",
                   help="where runs write (e.g. gs://bucket/anomaly): <URI>/pipeline_root/ "
                        "holds the artifacts, <URI>/serving_model/<name>/ the pushed models")
    c.add_argument("--image", default=DEFAULT_IMAGE,
                   help=f"container image with this project installed (default {DEFAULT_IMAGE}, "
                        f"a placeholder)")
    c.add_argument("--display-name", default=None, help="pipeline display name")
    c.add_argument("--label-column", default=None)
    c.add_argument("--model-name", default=None)
    c.add_argument("--config", help="JSON settings file, as for `run`")
    c.add_argument("--epochs", type=int, default=None)
    c.add_argument("--registry-uri", default=None,
                   help="MLflow tracking URI reachable from the containers (the default, "
                        "sqlite under the pipeline root, does not work on object storage)")
    c.add_argument("--beam-arg", action="append", default=[], metavar="ARG",
                   help="Beam pipeline argument for every component, e.g. "
                        "--beam-arg=--runner=DataflowRunner (repeatable)")
    c.add_argument("--no-cache", action="store_true", help="disable Vertex/KFP caching")
    add_span_arguments(c)


def compile_config(a: argparse.Namespace):
    from pipeline import config as config_lib

    file_values = config_lib.load_config_file(a.config) if a.config else {}
    out: Dict[str, Any] = {"data": {"path": a.data}, "output": a.pipeline_root}
    if a.label_column is not None:
        out["data"]["label_column"] = a.label_column
    if a.model_name is not None:
        out["model_name"] = a.model_name
    if a.epochs is not None:
        out["model"] = {"epochs": a.epochs}
    if a.registry_uri is not None:
        out["registry_uri"] = a.registry_uri
    if a.beam_arg:
        out["beam_args"] = list(a.beam_arg)
    if a.no_cache:
        out["enable_cache"] = False
    add_overrides(a, out, remote_output_ok=True)
    return config_lib.build_config(file_values, out)


def cmd_compile(a: argparse.Namespace) -> int:
    import contextlib

    from pipeline.cli import UsageError
    from pipeline.runners import kubeflow_v2

    cfg = compile_config(a)
    try:
        with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the JSON line
            result = kubeflow_v2.compile_pipeline(cfg, a.output, image=a.image,
                                                  display_name=a.display_name)
    except kubeflow_v2.CompileError as e:
        raise UsageError(str(e)) from None
    print(f"wrote {result['output']}", file=sys.stderr)
    print(json.dumps(result, sort_keys=True), flush=True)
    return 0


def prepare_span_input(cfg, expected_features=None):
    """For `run`: None when --data is not a directory of span folders (then
    --window > 1 is a usage error); else the checked SpanPlan."""
    from pipeline import spans
    from pipeline.cli import UsageError

    plan = spans.plan_input(cfg, expected_features=expected_features)
    if plan is None and cfg.data.window > 1:
        raise UsageError(f"--window {cfg.data.window} needs --data to be a directory of span "
                         f"folders (span-N/ or YYYY-MM-DD/), got {cfg.data.path}")
    return plan


def backfill(cfg, plan):
    """Ingests the window's older spans ML Metadata has not seen (spans.backfill)."""
    if plan is None or len(plan.selected) < 2:
        return []
    from pipeline import metadata, spans

    return [int(n) for n in spans.backfill(cfg, plan, metadata.connection_config(cfg))]


def span_summary(cfg, plan, backfilled, connection_config) -> Dict[str, Any]:
    from pipeline import results, spans

    trained = None
    try:
        trained = spans.trained_spans(results.RunRecord(cfg.metadata_path, connection_config,
                                                        cfg.pipeline_name))
    except Exception:  # noqa: BLE001 - the summary must not fail on an extra field
        pass
    return {"pattern": cfg.data.span_pattern or spans.detect_pattern(cfg.data.path),
            "newest": plan.newest.name, "newest_span": plan.newest.number,
            "window": cfg.data.window, "available": len(plan.spans),
            "checked": [s.name for s in plan.selected], "backfilled": backfilled,
            "trained_on_spans": trained}


def metadata_for_summary(cfg):
    """None for SQLite (results reads the file), else the MySQL ConnectionConfig."""
    if not cfg.metadata_mysql:
        return None
    from pipeline import metadata

    return metadata.connection_config(cfg)

