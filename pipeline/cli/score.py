"""`anomaly-pipeline score`: flag the rows of a CSV with a pushed model (pipeline/batch_scoring)."""
import argparse
import contextlib
import json
import sys

from components.model.explain import DEFAULT_K
from pipeline.batch_scoring.settings import (DEFAULT_ON_BAD_ROWS, DEFAULT_ROWS_PER_CHUNK,
                                             ON_BAD_ROWS, REJECTS_SUFFIX)
from pipeline.cli.common import EXIT_OK, UsageError, add_verbose, expected_error


def add_parser(sub) -> None:
    s = sub.add_parser("score", help="score a CSV with a pushed model",
                       description="Writes every input column plus reconstruction_error, "
                                   "is_anomaly (0/1) and top_features (the features with the "
                                   "largest shares of the row's error, e.g. "
                                   "'f3:0.52;f7:0.21;f0:0.09'), one output row per input row "
                                   "(with --on-bad-rows skip: per row it could score).")
    s.set_defaults(command_fn=cmd)
    s.add_argument("--model", required=True,
                   help="SavedModel directory, a serving_model/<name> directory (its newest "
                        "version is used), or models:/<name>@champion | models:/<name>/<version> "
                        "from the MLflow registry")
    s.add_argument("--input", required=True, help="CSV with the training columns")
    s.add_argument("--output", required=True, help="CSV to write")
    s.add_argument("--batch-size", type=int, default=None,
                   help=f"rows per chunk: one Beam element and one model call (default "
                        f"{DEFAULT_ROWS_PER_CHUNK})")
    s.add_argument("--registry-uri", default=None,
                   help="MLflow registry URI for a models:/ --model (default $MLFLOW_TRACKING_URI)")
    s.add_argument("--top-features", type=int, default=None, metavar="K",
                   help=f"features listed per row in the top_features column (default "
                        f"{DEFAULT_K}; 0 leaves the column out)")
    s.add_argument("--on-bad-rows", choices=ON_BAD_ROWS, default=DEFAULT_ON_BAD_ROWS,
                   help=f"a row that cannot be scored (text in a numeric column, a wrong "
                        f"number of fields, inf, bad UTF-8, ...): 'fail' stops with exit 2 "
                        f"and writes nothing; 'skip' writes it to <output>{REJECTS_SUFFIX}.csv "
                        f"with its line and the problem, and scores the rest (default "
                        f"{DEFAULT_ON_BAD_ROWS})")
    s.add_argument("--beam-arg", action="append", default=[], metavar="ARG",
                   help="Beam pipeline argument passed through, e.g. --beam-arg=--runner=..."
                        " (repeatable)")
    add_verbose(s)


def cmd(a: argparse.Namespace) -> int:
    if a.batch_size is not None and a.batch_size < 1:
        raise UsageError("--batch-size must be >= 1")
    if a.top_features is not None and a.top_features < 0:
        raise UsageError("--top-features must be >= 0")
    from pipeline import console

    log = console.scratch_log_file("score")
    with console.Session(log, verbose=a.verbose, expected=expected_error):
        from pipeline.batch_scoring.score import score_csv  # TF and Beam: inside the session
        from pipeline.beam_staging import with_project_package

        with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the JSON line
            stats = score_csv(a.model, a.input, a.output,
                              batch_size=a.batch_size or DEFAULT_ROWS_PER_CHUNK,
                              registry_uri=a.registry_uri,
                              beam_args=with_project_package(a.beam_arg),
                              top_features=a.top_features, on_bad_rows=a.on_bad_rows)
    stats["log"] = log
    print(json.dumps(stats, sort_keys=True), flush=True)
    return EXIT_OK
