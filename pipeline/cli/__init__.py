"""`anomaly-pipeline`: run the pipeline, score CSVs with a pushed model, compile, check drift.

One module per command (run.py, score.py, compile.py, drift.py), each with its
`add_parser` and `cmd`; common.py holds the exit codes and the flags that set
config fields. This module dispatches and maps errors to exit codes:

    0  success (also when the new model was not blessed: the summary says why)
    2  bad input or usage: one line `error: ...` on stderr, no traceback
    3  `drift` found drift
    1  anything else: one `error:` line naming the log file, where the traceback is (a full
       disk, a path that is not writable, memory, SIGTERM: the line names the path and what
       to do; pipeline/cli/failures.py)

Another run holding `run --output` is exit 2 too (components/output_lock.py). Each command
runs inside a pipeline/console.py Session: the TensorFlow, TFX, Beam and absl logs go to a
log file (`--verbose` also shows them), the terminal shows progress, and stdout only the
JSON line.
"""
import logging
import os
import sys
import warnings
from typing import List, Optional

from pipeline.cli import common, compile as compile_cmd, drift, run, score

EXIT_OK, EXIT_ERROR, EXIT_USAGE = common.EXIT_OK, common.EXIT_ERROR, common.EXIT_USAGE
COMMANDS = (run, score, compile_cmd, drift)


def build_parser() -> common.Parser:
    p = common.Parser(prog="anomaly-pipeline", description=(
        "TFX autoencoder anomaly detection: validate, standardize, train, threshold and "
        "push a versioned SavedModel (run); flag rows of a CSV with it (score)."))
    sub = p.add_subparsers(dest="command", required=True, parser_class=common.Parser)
    for command in COMMANDS:
        command.add_parser(sub)
    return p


def main(argv: Optional[List[str]] = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Google client libraries warn about Python 3.10 on every import; TFX 1.16 needs 3.10.
    warnings.filterwarnings("ignore", category=FutureWarning)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(message)s")
    from pipeline.cli import failures

    failures.quiet_terminal()
    failures.reset()
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    finally:
        if argv is None:  # the console script: this process ends here
            from pipeline import console

            console.park()


def _dispatch(args) -> int:
    from components import faults
    from pipeline.cli import failures
    from components.data_gate.errors import find_in_chain
    from components.errors import InputError
    from components.output_lock import OutputLocked
    from components.settings import SettingsError

    try:
        return args.command_fn(args)
    except (common.UsageError, SettingsError, InputError, OutputLocked) as e:
        print(f"error: {e}".replace("\n", " "), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_ERROR
    except (Exception, faults.Terminated) as e:  # noqa: BLE001 - last resort: one line
        rejected = find_in_chain(e)  # the data gate stopped the run (maybe wrapped by Beam)
        if rejected is not None:
            print(f"error: {rejected}".replace("\n", " "), file=sys.stderr)
            return EXIT_USAGE
        # the session wrote the traceback to its log; without one, a log of its own
        log = getattr(e, "anomaly_pipeline_log", None) or failures.traceback_log(e, args.command)
        failures.print_line(" ".join(failures.failure_line(e, log).split()))
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
