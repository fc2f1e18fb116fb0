"""One line for each fault (pipeline/cli/failures.py, components/faults.py), tracebacks
kept off the terminal, and the summary reading its own pipeline run (pipeline/lineage.py)."""
import errno
import logging
import os

import pytest

from components import faults
from pipeline.cli import failures


class InternalError(Exception):
    """Stands in for ml_metadata.errors.InternalError."""


InternalError.__module__ = "ml_metadata.errors"
WHERE = {"output": "/o", "metadata": "/o/metadata.sqlite", "registry_db": "/o/mlflow.db",
         "component": "Pusher"}


def _line(exc, **where):
    failures.annotate(exc, **dict(WHERE, **where))
    return failures.failure_line(exc, log="/o/logs/run.log")


def test_no_space_names_the_file_and_what_to_do():
    line = _line(OSError(errno.ENOSPC, "No space left on device", "/o/serving_model/m/.tmp-1/x"))
    assert line.startswith("error: /o/serving_model/m/.tmp-1/x: disk full (No space left on device")
    assert "in Pusher; free space there" in line and line.endswith("(log: /o/logs/run.log)")


def test_sqlite_full_in_ml_metadata_names_the_store():
    e = InternalError("Executing statement failed: database or disk is full query: INSERT INTO "
                      "Type ...")
    assert _line(e).startswith("error: /o/metadata.sqlite: disk full (Executing statement")


def test_a_wrapped_fault_is_found_in_the_chain():
    try:
        try:
            raise OSError(errno.EROFS, "Read-only file system", "/o/registry.json")
        except OSError as inner:
            raise RuntimeError("push failed") from inner
    except RuntimeError as e:
        line = _line(e)
    assert line.startswith("error: /o/registry.json: not writable (Read-only file system)")


def test_memory_and_sigterm_and_a_bug():
    assert _line(MemoryError("Unable to allocate 8 GiB")).startswith(
        "error: out of memory in Pusher (MemoryError: Unable to allocate 8 GiB); give the run")
    assert "stopped by SIGTERM in Pusher" in _line(faults.Terminated())
    assert _line(KeyError("x")).startswith("error: KeyError: 'x' in Pusher (log:")
    assert faults.resource_fault(ValueError("bad value")) is None


def test_tracebacks_stay_off_the_terminal():
    fmt = failures.TerminalFormatter("%(levelname)s %(message)s")
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "it failed", None,
                                   exc_info=__import__("sys").exc_info())
    assert fmt.format(record) == "ERROR it failed [traceback in the log file]"
    pasted = logging.LogRecord("x", logging.ERROR, __file__, 1,
                               "worker: Traceback (most recent call last):\n  File ...", None,
                               None)
    assert fmt.format(pasted) == "ERROR worker: [traceback in the log file]"


def test_an_unexpected_failure_is_one_line_and_the_traceback_goes_to_a_log(main, tmp_path,
                                                                             monkeypatch):
    from pipeline.cli import score

    def broken(args):
        raise RuntimeError("something deep\nsecond line")

    import tempfile

    monkeypatch.setattr(score, "cmd", broken)  # add_parser binds it when main builds the parser
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # score has no output dir for logs
    code, out, err = main("score", "--model", "m", "--input", "i", "--output", "o")
    assert code == 1 and out == ""
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err
    assert lines[0].startswith("error: RuntimeError: something deep (log: ")
    log = lines[0].rsplit("(log: ", 1)[1].rstrip(")")
    assert log.startswith(str(tmp_path)) and "Traceback" in open(log).read()


def test_the_summary_reads_its_own_run_not_the_newest(tmp_path):
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2 as mlmd

    from pipeline import lineage

    path = str(tmp_path / "metadata.sqlite")
    config = mlmd.ConnectionConfig()
    config.sqlite.filename_uri = path
    store = metadata_store.MetadataStore(config)
    run_type = store.put_context_type(mlmd.ContextType(name="pipeline_run"))
    store.put_contexts([mlmd.Context(type_id=run_type, name="mine"),
                        mlmd.Context(type_id=run_type, name="started-later")])
    assert lineage.RunRecord(path).run.name == "started-later"   # the newest
    assert lineage.RunRecord(path, run_id="mine").run.name == "mine"
    with pytest.raises(RuntimeError, match="pipeline run gone is not recorded"):
        lineage.RunRecord(path, run_id="gone")
    assert os.path.exists(path)
