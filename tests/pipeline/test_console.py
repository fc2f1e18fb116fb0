"""pipeline/console.py: what reaches the terminal, what goes to the log, the resolver filter."""
import io
import logging
import os
import subprocess
import sys
import textwrap

import pytest

from components import progress
from pipeline import console
from tests.helpers.terminal import screen_lines

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _record(logger_name, msg, args, exc, level=logging.ERROR):
    return logging.LogRecord(logger_name, level, "resolver_node_handler.py", 81, msg, args,
                             (type(exc), exc, None))


def test_first_run_resolver_error_becomes_one_info_line_without_traceback():
    from tfx.orchestration.portable.input_resolution import exceptions

    exc = exceptions.InputResolutionError(
        "Error while resolving inputs for accepted_statistics_resolver: <tfx.dsl.input_"
        "resolution.strategies.latest_artifact_strategy.LatestArtifactStrategy object at "
        "0x7f> returned None.")
    rec = _record("absl", "[%s] Input resolution error: %s",
                  ("accepted_statistics_resolver", exc), exc)
    assert console.FirstRunResolverFilter().filter(rec) is True
    assert rec.levelno == logging.INFO and rec.levelname == "INFO"
    assert rec.exc_info is None
    assert rec.getMessage().startswith("[accepted_statistics_resolver] nothing to resolve yet")
    assert "Traceback" not in logging.Formatter().format(rec)


@pytest.mark.parametrize("text", [
    "Error while resolving inputs for x: <SpanRangeStrategy object> returned None.",
    "the metadata store is locked",
])
def test_other_resolution_errors_keep_their_level_and_traceback(text):
    from tfx.orchestration.portable.input_resolution import exceptions

    exc = exceptions.InputResolutionError(text)
    rec = _record("absl", "[%s] Input resolution error: %s", ("x", exc), exc)
    console.FirstRunResolverFilter().filter(rec)
    assert rec.levelno == logging.ERROR and rec.exc_info is not None


def test_a_resolution_error_logged_through_absl_in_a_session_reads_as_info(tmp_path):
    from absl import logging as absl_logging
    from tfx.orchestration.portable.input_resolution import exceptions

    log = tmp_path / "logs" / "run.log"
    terminal = io.StringIO()
    with console.Session(str(log), verbose=True, terminal=terminal):
        try:
            raise exceptions.InputResolutionError(
                "Error while resolving inputs for r: <LatestArtifactStrategy object at 0x1> "
                "returned None.")
        except exceptions.InputResolutionError as e:
            absl_logging.exception("[%s] Input resolution error: %s", "r", e)
    text = log.read_text()
    assert "[r] nothing to resolve yet" in text
    assert "Traceback" not in text and " ERROR " not in text


def _plain(records):
    out = io.StringIO()
    handler = console.TerminalHandler(out, live=False)
    log = logging.getLogger("test.console.plain")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    try:
        for message, step in records:
            log.info(message, extra={"progress": step} if step else None)
    finally:
        log.removeHandler(handler)
    return out.getvalue().splitlines()


def test_plain_lines_sample_fine_grained_steps_and_keep_the_rest():
    epochs = 50
    records = [("[9/11] Trainer ...", progress.Step("dag", 8, 11))]
    records += [(f"  training epoch {e}/{epochs}",
                 progress.Step("fit", e, epochs, sample=True)) for e in range(1, epochs + 1)]
    records += [("  training: 50/50 epochs", progress.Step("fit", keep=True, end=True)),
                ("[9/11] Trainer done 12.0 s", progress.Step("dag", keep=True, end=True)),
                ("pushed model: /x", None), ("", progress.Step("dag", end=True))]
    lines = _plain(records)
    epoch_lines = [l for l in lines if " epoch " in l]
    # The first epoch, then one per fifth of the total: 1, 10, 20, 30, 40, 50.
    assert epoch_lines == [f"  training epoch {e}/50" for e in (1, 10, 20, 30, 40, 50)]
    assert lines[0] == "[9/11] Trainer ..." and lines[-1] == "pushed model: /x"
    assert "  training: 50/50 epochs" in lines and "[9/11] Trainer done 12.0 s" in lines
    assert "" not in lines


def test_live_bars_leave_only_the_kept_lines_on_the_screen():
    out = io.StringIO()
    handler = console.TerminalHandler(out, live=True, width=100)
    log = logging.getLogger("test.console.live")
    log.propagate = False
    log.setLevel(logging.INFO)
    log.addHandler(handler)
    try:
        log.info("[1/2] A ...", extra={"progress": progress.Step("dag", 0, 2, label="[1/2] A")})
        for e in range(1, 6):
            log.info(f"epoch {e}/5", extra={"progress": progress.Step(
                "fit", e, 5, status=f"epoch {e}/5 loss 0.3", sample=True)})
        log.info("  fit done", extra={"progress": progress.Step("fit", keep=True, end=True)})
        log.info("[1/2] A done 1.0 s", extra={"progress": progress.Step("dag", keep=True,
                                                                        end=True)})
        log.info("summary line")
    finally:
        log.removeHandler(handler)
        handler.close()
    raw = out.getvalue().encode()
    assert b"\x1b[" in raw  # drawn with escape sequences (a bar was shown) ...
    assert screen_lines(raw) == ["  fit done", "[1/2] A done 1.0 s", "summary line"]


_SCRIPT = textwrap.dedent("""
    import logging, os, sys, warnings
    sys.path.insert(0, {root!r})
    from components import progress
    from pipeline import console
    with console.Session(sys.argv[1], verbose=sys.argv[2] == "1"):
        os.write(2, b"E0000 a C++ line written to fd 2\\n")
        print("a print to stderr", file=sys.stderr)
        logging.getLogger("tensorflow").warning("a TensorFlow warning")
        warnings.warn("a Python warning")
        progress.say("progress line one")
        progress.step("[1/1] X ...", task="dag", done=0, total=1)
        progress.step("[1/1] X done 0.1 s", task="dag", keep=True, end=True)
    print("stdout: the JSON line")
    print("after the session", file=sys.stderr)
""")


def _run_script(tmp_path, verbose):
    script = tmp_path / "s.py"
    script.write_text(_SCRIPT.format(root=ROOT))
    log = tmp_path / "logs" / "x.log"
    env = dict(os.environ, ANOMALY_PIPELINE_PROGRESS="")
    proc = subprocess.run([sys.executable, str(script), str(log), "1" if verbose else "0"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc, log.read_text()


def test_quiet_session_sends_everything_but_progress_to_the_log(tmp_path):
    proc, log = _run_script(tmp_path, verbose=False)
    assert proc.stderr.splitlines() == ["progress line one", "[1/1] X ...",
                                        "[1/1] X done 0.1 s", "after the session"]
    assert proc.stdout == "stdout: the JSON line\n"
    for text in ("E0000 a C++ line written to fd 2", "a print to stderr",
                 "WARNING tensorflow", "a TensorFlow warning", "a Python warning",
                 "progress line one", "[1/1] X done 0.1 s"):
        assert text in log, text
    assert "after the session" not in log


def test_verbose_session_shows_the_logs_live_and_still_writes_the_file(tmp_path):
    proc, log = _run_script(tmp_path, verbose=True)
    assert "a TensorFlow warning" in proc.stderr and "E0000 a C++ line" in proc.stderr
    assert proc.stderr.count("progress line one") == 1  # once, plain, not also as a log line
    assert "a TensorFlow warning" in log and "progress line one" in log


def test_an_unexpected_error_is_logged_with_its_traceback_and_names_the_log(tmp_path):
    log = tmp_path / "l.log"
    with pytest.raises(RuntimeError) as e:
        with console.Session(str(log), terminal=io.StringIO()):
            raise RuntimeError("boom")
    assert e.value.anomaly_pipeline_log == str(log)
    text = log.read_text()
    assert "Traceback" in text and "RuntimeError: boom" in text


def test_an_expected_error_is_one_line_in_the_log(tmp_path):
    from components.errors import InputError
    from pipeline.cli.common import expected_error

    log = tmp_path / "l.log"
    with pytest.raises(InputError) as e:
        with console.Session(str(log), terminal=io.StringIO(), expected=expected_error):
            raise InputError("/d.csv", 3, "b", "non-numeric value 'x'")
    assert not hasattr(e.value, "anomaly_pipeline_log")
    text = log.read_text()
    assert "stopped: /d.csv:3: b:" in text and "Traceback" not in text


def test_handlers_a_library_replaced_are_put_back(tmp_path):
    log = tmp_path / "l.log"
    with console.Session(str(log), terminal=io.StringIO()) as session:
        root = logging.getLogger()
        # What alembic's fileConfig does on MLflow's first registration.
        root.handlers = [logging.StreamHandler(io.StringIO())]
        root.setLevel(logging.WARNING)
        console.keep_handlers()
        logging.getLogger("later").info("an INFO line after the registration")
        assert root.handlers == session._handlers
    assert "an INFO line after the registration" in log.read_text()


def test_log_files_are_unique_and_named_by_time(tmp_path):
    first = console.log_file(str(tmp_path))
    open(first, "w").close()
    second = console.log_file(str(tmp_path))
    assert first != second and os.path.dirname(first) == str(tmp_path)
    assert os.path.basename(first)[:8].isdigit() and first.endswith(".log")


def test_park_points_fd_2_at_the_log_for_the_interpreter_shutdown(tmp_path):
    script = tmp_path / "p.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {ROOT!r})
        from pipeline import console
        with console.Session(sys.argv[1]):
            pass
        print("error: the last line", file=sys.stderr)
        console.park()
        print("Exception ignored in: something at shutdown", file=sys.stderr)
    """))
    log = tmp_path / "p.log"
    proc = subprocess.run([sys.executable, str(script), str(log)], capture_output=True,
                          text=True, timeout=120)
    assert proc.stderr == "error: the last line\n"
    assert "Exception ignored in: something at shutdown" in log.read_text()
    assert proc.returncode == 0
