"""What a failed command shows: one `error:` line on the terminal, the traceback in a log file.

- `quiet_terminal()`: log records on stderr lose their tracebacks (exception
  info, and a traceback pasted into a message by Beam); the log file keeps
  them.
- `LogFile`: a log file for the whole command (`run`: `<output>/logs/`,
  pipeline/cli/guard.py); `traceback_log()` appends a failure's traceback to
  it, or to a file under the temporary directory when the command has none.
- `failure_line(exc)`: the one line for an unexpected failure, exit status 1.
  A resource fault (components/faults.py) names the path and what to do:
  `error: <path>: disk full (No space left on device) in Pusher; free space
  there ... (log: ...)`; SIGTERM says the state is consistent and to rerun.
"""
import datetime
import logging
import os
import shutil
import sys
import tempfile
import threading
import traceback
from typing import Any, Dict, Optional

from components import faults

_TRACEBACK = "Traceback (most recent call last)"
_state: Dict[str, Optional[str]] = {"log": None}


class TerminalFormatter(logging.Formatter):
    """The usual line, without exception info or a traceback inside the message."""

    def format(self, record: logging.LogRecord) -> str:
        saved = record.exc_info, record.exc_text, record.stack_info
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        try:
            text = super().format(record)
        finally:
            record.exc_info, record.exc_text, record.stack_info = saved
        if _TRACEBACK in text:
            text = text.split(_TRACEBACK, 1)[0].rstrip() + " [traceback in the log file]"
        elif saved[0]:
            text += " [traceback in the log file]"
        return text


def quiet_terminal(fmt: str = "%(asctime)s %(levelname)s %(message)s") -> None:
    """Tracebacks off the terminal: stream handlers of the root logger get
    TerminalFormatter; uncaught exceptions in threads are logged, not printed."""
    for handler in logging.getLogger().handlers:
        if getattr(handler, "stream", None) in (sys.stderr, sys.__stderr__) and not isinstance(
                handler, logging.FileHandler):
            handler.setFormatter(TerminalFormatter(fmt))

    def _thread_hook(args):
        if issubclass(args.exc_type, SystemExit):
            return
        logging.error("uncaught exception in thread %s", getattr(args.thread, "name", "?"),
                      exc_info=(args.exc_type, args.exc_value, args.exc_traceback))

    threading.excepthook = _thread_hook

    def _unraisable_hook(unraisable):  # e.g. a file whose close fails on a full disk
        logging.warning("%s: %s", unraisable.err_msg or "exception ignored",
                        unraisable.exc_value)

    sys.unraisablehook = _unraisable_hook


class _FileHandler(logging.FileHandler):
    """Stops writing, silently, once a write fails (a full disk): the terminal shows
    no "--- Logging error ---" traceback, and the command goes on."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging API
        self._broken = True

    def emit(self, record: logging.LogRecord) -> None:
        if not getattr(self, "_broken", False):
            super().emit(record)


def reset() -> None:
    _state["log"] = None


class LogFile:
    """A file handler on the root logger for the block (full records, tracebacks too).

    Never fails the command: when the file cannot be created (a full or
    read-only disk) the command goes on without it.
    """

    def __init__(self, path: str):
        self.path, self.handler = path, None

    def __enter__(self) -> Optional[str]:
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            self.handler = _FileHandler(self.path, encoding="utf-8")
        except OSError:
            return None
        self.handler.setFormatter(logging.Formatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s"))
        self.handler.setLevel(logging.INFO)
        logging.getLogger().addHandler(self.handler)
        _state["log"] = self.path
        return self.path

    def __exit__(self, *exc) -> None:
        if self.handler is not None:
            logging.getLogger().removeHandler(self.handler)
            self.handler.close()


def log_name(prefix: str = "") -> str:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return f"{prefix}{stamp}-{os.getpid()}.log"


def traceback_log(exc: BaseException, command: str = "anomaly-pipeline") -> Optional[str]:
    """Appends `exc`'s traceback to the command's log file (or a new one under the
    temporary directory); returns its path, None when nothing could be written."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    candidates = [_state["log"], os.path.join(tempfile.gettempdir(), "anomaly-pipeline-logs",
                                              log_name(f"{command}-"))]
    for path in candidates:
        if not path:
            continue
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "a", encoding="utf-8") as f:
                f.write(f"{datetime.datetime.now().isoformat()} ERROR {command} failed\n{text}")
            return path
        except OSError:
            continue
    return None


def annotate(exc: BaseException, **where: Any) -> None:
    """Context for `failure_line` (component, output, metadata, ...), kept on `exc`."""
    try:
        known = dict(getattr(exc, "_anomaly_where", {}) or {})
        known.update({k: v for k, v in where.items() if v})
        exc._anomaly_where = known  # type: ignore[attr-defined]
    except (AttributeError, TypeError):  # an exception type without __dict__
        pass


def _where(exc: BaseException) -> Dict[str, Any]:
    return dict(getattr(exc, "_anomaly_where", {}) or {})


def _fault_path(fault: faults.ResourceFault, exc: BaseException, where: Dict[str, Any]):
    if fault.path:
        return fault.path
    for e in faults.chain(exc):
        module = type(e).__module__ or ""
        if module.startswith("ml_metadata") or "query:" in str(e):
            return where.get("metadata") or where.get("output")
        if module.startswith(("sqlalchemy", "mlflow", "sqlite3")):
            return where.get("registry_db") or where.get("output")
    return where.get("output")


def _free_space(path: Optional[str]) -> str:
    probe = path
    while probe and not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not probe:
        return ""
    try:
        usage = shutil.disk_usage(probe)
    except OSError:
        return ""
    return f", {usage.free / 1e6:.1f} MB free of {usage.total / 1e6:.0f} MB"


def failure_line(exc: BaseException, log: Optional[str] = None) -> str:
    """The one `error:` line for an unexpected failure (exit status 1)."""
    where = _where(exc)
    component = f" in {where['component']}" if where.get("component") else ""
    tail = f" (log: {log})" if log else ""
    if isinstance(exc, faults.Terminated):
        return (f"error: stopped by {exc}{component}; serving_model/, registry.json and MLflow "
                f"agree (a push is recorded whole or not at all); rerun the same command to "
                f"finish{tail}")
    fault = faults.resource_fault(exc)
    if fault is not None and fault.kind == faults.OUT_OF_MEMORY:
        return f"error: {fault.kind}{component} ({fault.detail}); {fault.advice}{tail}"
    if fault is not None:
        path = _fault_path(fault, exc, where)
        free = _free_space(path) if fault.kind == faults.DISK_FULL else ""
        return (f"error: {path or 'the output'}: {fault.kind} ({fault.detail}{free}){component}; "
                f"{fault.advice}{tail}")
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()[0][:1000]
    return f"error: {text}{component}{tail}"


def report(exc: BaseException, command: str) -> str:
    """Writes the traceback to the log and returns the line to print."""
    log = traceback_log(exc, command)
    return " ".join(failure_line(exc, log).split())


def print_line(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
