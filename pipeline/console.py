"""What a command shows on the terminal, and the log file everything else goes to.

Quiet (the default): while the command runs, file descriptor 2 itself points at
the log file (os.dup2), so everything that writes to stderr lands there: Python
logging (TFX/absl, TensorFlow, Beam, MLflow/alembic, ours), `warnings`,
print()s, TensorFlow's C++ logging (it writes to fd 2 directly) and
subprocesses (Beam workers inherit fd 2). The terminal, a duplicate of the
original stderr taken before, shows only the progress records
(components/progress.py): a live bar where it is a TTY, plain lines otherwise
(a log file, Airflow, CI), so neither gets `\\r` garbage.

`--verbose`: fd 2 stays the terminal and every log record goes to it as well as
to the file; progress is plain lines among them.

`main()` parks fd 2 on the log file once the command has printed its last
line, so what the interpreter says while it shuts down (TensorFlow objects
failing in `__del__`) does not reach the terminal either (`park`).
"""
import logging
import math
import os
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional, TextIO

from components import progress

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s %(filename)s:%(lineno)d] %(message)s"
PROGRESS_ENV = "ANOMALY_PIPELINE_PROGRESS"  # "live" or "plain": override the TTY check
PLAIN_SAMPLES = 5  # a sampled task shows about this many plain lines

_active: Optional["Session"] = None
_parkable: Optional[str] = None


def log_file(directory: str, prefix: str = "") -> str:
    """`<directory>/<prefix><YYYYmmdd-HHMMSS>.log` (local time), not an existing file."""
    stem = os.path.join(os.path.abspath(directory), prefix + time.strftime("%Y%m%d-%H%M%S"))
    path, n = stem + ".log", 1
    while os.path.exists(path):
        n += 1
        path = f"{stem}-{n}.log"
    return path


def scratch_log_file(command: str) -> str:
    """For a command without an output directory of its own (`score`, `compile`)."""
    return log_file(os.path.join(tempfile.gettempdir(), "anomaly-pipeline-logs"),
                    f"{command}-")


class FirstRunResolverFilter(logging.Filter):
    """TFX's ERROR + traceback for a resolver that found nothing yet, as one INFO line.

    tfx/orchestration/portable/resolver_node_handler.py logs
    `logging.exception('[%s] Input resolution error: %s', node_id, e)` when a
    strategy returns None, which LatestArtifactStrategy does whenever its
    channel holds no artifact yet (latest_artifact_strategy.py): on a first
    run, `accepted_statistics_resolver` has no accepted statistics to find.
    TFX then records the resolver's execution as FAILED and the DataGate's
    optional baseline input resolves empty, as intended. Any other resolution
    error keeps its level and traceback.
    """

    STRATEGIES = ("LatestArtifactStrategy",)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.ERROR or not record.exc_info:
            return True
        exc = record.exc_info[1]
        text = str(exc)
        if (any(c.__name__ == "InputResolutionError" for c in type(exc).__mro__)
                and "returned None" in text
                and any(s in text for s in self.STRATEGIES)
                and isinstance(record.args, tuple) and record.args):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg = ("[%s] nothing to resolve yet: its channel holds no artifact (a first "
                          "run); TFX records this resolver's execution as FAILED")
            record.args = (record.args[0],)
            record.exc_info, record.exc_text = None, None
        return True


class _NotProgress(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(progress.LOGGER)


class TerminalHandler(logging.Handler):
    """Progress records on the terminal: rich bars on a TTY (`live`), else plain lines."""

    def __init__(self, stream: TextIO, live: bool, width: Optional[int] = None):
        super().__init__(logging.INFO)
        self.stream, self.live, self.width = stream, live, width
        self._buckets: Dict[str, int] = {}
        self._bars: Dict[str, int] = {}
        self._progress = None
        self._console = None

    # ------------------------------------------------------------------ plain
    def _due(self, step: progress.Step) -> bool:
        """A sampled step is shown first, then about every 1/PLAIN_SAMPLES of the total."""
        if not step.sample or not step.total:
            return True
        bucket = int(math.floor(PLAIN_SAMPLES * float(step.done or 0) / float(step.total)))
        last = self._buckets.get(step.task)
        if last is not None and bucket <= last:
            return False
        self._buckets[step.task] = bucket
        return True

    def _plain(self, text: str, step: Optional[progress.Step]) -> None:
        if step is not None and step.end:
            self._buckets.pop(step.task, None)
        if text and (step is None or step.keep or step.end or self._due(step)):
            self.stream.write(text + "\n")
            self.stream.flush()

    # ------------------------------------------------------------------ live
    def _rich(self):
        if self._console is None:
            from rich.console import Console

            self._console = Console(file=self.stream, force_terminal=True, width=self.width,
                                    markup=False, highlight=False, emoji=False,
                                    soft_wrap=True, log_path=False)
        return self._console

    def _bar(self, step: progress.Step) -> None:
        if self._progress is None:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("{task.description}", markup=False), BarColumn(bar_width=24),
                TimeElapsedColumn(), TextColumn("{task.fields[status]}", markup=False),
                console=self._rich(), transient=True, redirect_stdout=False,
                redirect_stderr=False, refresh_per_second=4)
            self._progress.start()
        task = self._bars.get(step.task)
        label = step.label or step.task
        if task is None:
            task = self._progress.add_task(label, total=step.total, status=step.status)
            self._bars[step.task] = task
        self._progress.update(task, description=label, completed=step.done or 0,
                              total=step.total, status=step.status)

    def _end_bar(self, task_name: str) -> None:
        task = self._bars.pop(task_name, None)
        if not self._bars:
            # Stopped with its last bar still shown: a transient display then erases
            # that line (removing the task first would leave an empty line behind).
            self._stop_live()
        elif task is not None and self._progress is not None:
            self._progress.remove_task(task)

    def _stop_live(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        self._bars.clear()

    def _live(self, text: str, step: Optional[progress.Step]) -> None:
        if step is not None and step.task:
            if step.end:
                self._end_bar(step.task)
            else:
                self._bar(step)
        if text and (step is None or step.keep or step.end):
            self._rich().print(text)
            self.stream.flush()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            step = getattr(record, "progress", None)
            if not isinstance(step, progress.Step):
                step = None
            if self.live:
                self._live(text, step)
            else:
                self._plain(text, step)
        except Exception:  # noqa: BLE001 - never fail a run over the terminal
            self.handleError(record)

    def close(self) -> None:
        self.acquire()
        try:
            self._stop_live()
        finally:
            self.release()
        super().close()


def _is_live(stream: TextIO) -> bool:
    forced = os.environ.get(PROGRESS_ENV, "").strip().lower()
    if forced in ("live", "plain"):
        return forced == "live"
    try:
        return stream.isatty() and os.environ.get("TERM", "") != "dumb"
    except (AttributeError, ValueError, OSError):
        return False


def _width(stream: TextIO) -> Optional[int]:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return None


def _absl_logger() -> Optional[logging.Logger]:
    try:
        from absl import logging as absl_logging
    except ImportError:
        return None
    # absl's level is a flag: TF's SavedModel export saves and restores it
    # (tensorflow/python/trackable/autotrackable.py), which pins the `absl`
    # logger at WARNING after the Trainer's export unless the flag holds an
    # explicit level.
    absl_logging.set_verbosity(absl_logging.INFO)
    return absl_logging.get_absl_logger()


class Session:
    """`with Session(log_file) as s:` the command's logs go to `log_file` (see module doc).

    On an exception, the log gets its traceback (or one line when `expected(e)`
    says it is a usage or input error, reported by main() as one line), and the
    exception gets the attribute `anomaly_pipeline_log` = the log file.
    Everything is restored on exit, so main()'s `error: ...` line reaches the
    terminal.
    """

    def __init__(self, log_file_path: str, verbose: bool = False,
                 expected: Callable[[BaseException], bool] = lambda e: False,
                 terminal: Optional[TextIO] = None):
        self.log_file = os.path.abspath(log_file_path)
        self.verbose = verbose
        self.expected = expected
        self._terminal = terminal
        self._owns_terminal = False
        self._saved_fd: Optional[int] = None
        self._handlers: List[logging.Handler] = []

    @property
    def terminal(self) -> TextIO:
        return self._terminal

    def _open_terminal(self) -> TextIO:
        if self._terminal is not None:
            return self._terminal
        try:
            fd = sys.stderr.fileno()
        except (AttributeError, ValueError, OSError):  # a test's capture: write to it
            return sys.stderr
        self._owns_terminal = True
        return os.fdopen(os.dup(fd), "w", buffering=1, encoding="utf-8", errors="replace")

    def __enter__(self) -> "Session":
        global _active
        os.makedirs(os.path.dirname(self.log_file), exist_ok=True)
        sys.stdout.flush()
        sys.stderr.flush()
        self._file = open(self.log_file, "a", encoding="utf-8", buffering=1)
        self._terminal = self._open_terminal()
        if not self.verbose:
            log_fd = os.open(self.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            self._saved_fd = os.dup(2)
            os.dup2(log_fd, 2)
            os.close(log_fd)
        file_handler = logging.StreamHandler(self._file)
        file_handler.setFormatter(logging.Formatter(LOG_FORMAT))
        self._handlers = [file_handler]
        if self.verbose:
            live_logs = logging.StreamHandler(self._terminal)
            live_logs.setFormatter(logging.Formatter(LOG_FORMAT))
            live_logs.addFilter(_NotProgress())
            self._handlers.append(live_logs)
        root = logging.getLogger()
        self._saved_root = (root.handlers[:], root.level)
        root.handlers = list(self._handlers)
        root.setLevel(logging.INFO)
        logging.captureWarnings(True)
        self._absl = _absl_logger()
        self._resolver_filter = FirstRunResolverFilter()
        if self._absl is not None:
            self._absl.addFilter(self._resolver_filter)
        live = not self.verbose and _is_live(self._terminal)
        self._terminal_handler = TerminalHandler(self._terminal, live,
                                                 _width(self._terminal) if live else None)
        plog = progress.logger()
        self._saved_progress = (plog.level, plog.disabled)
        plog.setLevel(logging.INFO)
        plog.disabled = False
        plog.addHandler(self._terminal_handler)
        _active = self
        logging.getLogger("anomaly_pipeline").info("log of %s (pid %d)", " ".join(sys.argv),
                                                   os.getpid())
        return self

    def keep_handlers(self) -> None:
        """Puts our root handlers back if a library replaced them (alembic's fileConfig,
        run by MLflow's first registration, sets root to StreamHandler(stderr) at WARN)."""
        root = logging.getLogger()
        if root.handlers != self._handlers or root.level != logging.INFO:
            root.handlers = list(self._handlers)
            root.setLevel(logging.INFO)
        progress.logger().disabled = False

    def __exit__(self, exc_type, exc, tb) -> None:
        global _active, _parkable
        log = logging.getLogger("anomaly_pipeline")
        try:
            if exc is not None:
                self.keep_handlers()
                if isinstance(exc, KeyboardInterrupt):
                    log.warning("interrupted")
                elif self.expected(exc):
                    log.warning("stopped: %s", str(exc).replace("\n", " "))
                else:
                    log.error("failed: %s: %s", type(exc).__name__, exc,
                              exc_info=(exc_type, exc, tb))
                    try:
                        exc.anomaly_pipeline_log = self.log_file
                    except AttributeError:
                        pass
        finally:
            self._restore()
        _active = None
        if not self.verbose:
            _parkable = self.log_file

    def _restore(self) -> None:
        plog = progress.logger()
        plog.removeHandler(self._terminal_handler)
        self._terminal_handler.close()
        plog.setLevel(self._saved_progress[0])
        plog.disabled = self._saved_progress[1]
        if self._absl is not None:
            self._absl.removeFilter(self._resolver_filter)
        logging.captureWarnings(False)
        sys.stdout.flush()
        sys.stderr.flush()
        root = logging.getLogger()
        root.handlers, level = self._saved_root
        root.setLevel(level)
        for h in self._handlers:
            h.flush()
        if self._saved_fd is not None:
            os.dup2(self._saved_fd, 2)
            os.close(self._saved_fd)
            self._saved_fd = None
        if self._owns_terminal:
            self._terminal.close()
        self._file.close()


def keep_handlers() -> None:
    """Session.keep_handlers of the session running now, if any (called after each node)."""
    if _active is not None:
        _active.keep_handlers()


def park() -> None:
    """Points fd 2 at the last quiet session's log for the rest of the process.

    For main() once the command has printed everything: the interpreter's
    shutdown (e.g. `Exception ignored in: <function AtomicFunction.__del__>`
    with a traceback, from TensorFlow) then goes to the log. Only for a
    process that is ours to end (the console script), never in-process calls.
    """
    if _parkable is None or _active is not None:
        return
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        fd = os.open(_parkable, os.O_WRONLY | os.O_APPEND)
        os.dup2(fd, 2)
        os.close(fd)
    except OSError:
        pass
