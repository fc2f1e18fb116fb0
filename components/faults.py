"""Resource faults, told apart from bugs, and signals held off during a critical section.

TFX-free, importable without TensorFlow. Two jobs:

- `resource_fault(exc)`: whether an exception (or anything in its chain of
  causes and contexts) is a fault of the machine rather than of the code or the
  data: the disk is full, a path is not writable, memory ran out. ML Metadata,
  SQLite (MLflow's store), TensorFlow's file system and Beam report these in
  their own words; every one is read here, once. The CLI turns a fault into one
  line naming the path and what to do (pipeline/cli/failures.py); the Pusher
  rolls a push back on one instead of recording it as a registry error.
- `deferred_signals()`: SIGTERM and SIGINT arriving inside the block wait until
  it ends (then they are delivered as usual). The Pusher publishes a version
  and records it in registry.json and MLflow inside such a block, so a
  scheduler's SIGTERM never splits that work in two.
"""
import contextlib
import errno
import logging
import os
import signal
import threading
from dataclasses import dataclass
from typing import Iterator, List, Optional

DISK_FULL, NOT_WRITABLE, OUT_OF_MEMORY = "disk full", "not writable", "out of memory"

_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_PERMISSION_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS}
# Phrases the libraries use where no errno survives (lower case).
_PHRASES = (
    ("database or disk is full", DISK_FULL),           # SQLite: ML Metadata, MLflow
    ("no space left on device", DISK_FULL),            # strerror(ENOSPC), TF, Beam
    ("disk quota exceeded", DISK_FULL),
    ("attempt to write a readonly database", NOT_WRITABLE),  # SQLite
    ("read-only file system", NOT_WRITABLE),
    ("permission denied", NOT_WRITABLE),
    ("unable to open database file", NOT_WRITABLE),
    ("cannot allocate memory", OUT_OF_MEMORY),
    ("out of memory", OUT_OF_MEMORY),
    ("oom when allocating", OUT_OF_MEMORY),             # TensorFlow's ResourceExhausted
)
ADVICE = {
    DISK_FULL: "free space there (or use another --output) and rerun the same command",
    NOT_WRITABLE: "give this user write access there (or use another --output) and rerun",
    OUT_OF_MEMORY: "give the run more memory or lower --batch-size, then rerun",
}


class Terminated(BaseException):
    """SIGTERM from a scheduler (raised by the CLI's handler; not an Exception, so no
    library's `except Exception` swallows it)."""

    def __init__(self, signum: int = signal.SIGTERM):
        self.signum = signum
        super().__init__(signal.Signals(signum).name)


@dataclass(frozen=True)
class ResourceFault:
    kind: str                 # DISK_FULL, NOT_WRITABLE or OUT_OF_MEMORY
    path: Optional[str]       # the file it was about, when the error says
    detail: str               # the library's own words, one line

    @property
    def advice(self) -> str:
        return ADVICE[self.kind]


def chain(exc: BaseException) -> List[BaseException]:
    """`exc`, then its causes and contexts, each once."""
    out: List[BaseException] = []
    while exc is not None and exc not in out and len(out) < 50:
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:500]


def resource_fault(exc: BaseException) -> Optional[ResourceFault]:
    """The resource fault behind `exc`, or None when it is not one."""
    for e in chain(exc):
        if isinstance(e, MemoryError):
            return ResourceFault(OUT_OF_MEMORY, None, f"{type(e).__name__}: {_first_line(e)}")
        if isinstance(e, OSError) and e.errno is not None:
            kind = (DISK_FULL if e.errno in _DISK_ERRNOS
                    else NOT_WRITABLE if e.errno in _PERMISSION_ERRNOS
                    else OUT_OF_MEMORY if e.errno == errno.ENOMEM else None)
            if kind:
                return ResourceFault(kind, e.filename and os.fspath(e.filename),
                                     e.strerror or _first_line(e))
    for e in chain(exc):
        text = str(e).lower()
        for phrase, kind in _PHRASES:
            if phrase in text:
                return ResourceFault(kind, None, _first_line(e))
    return None


_tls = threading.local()


@contextlib.contextmanager
def deferred_signals(signums=(signal.SIGTERM, signal.SIGINT)) -> Iterator[None]:
    """SIGTERM/SIGINT received inside the block are delivered when it ends.

    Only the main thread can install signal handlers; elsewhere (and when
    nested) the block runs as is. The handlers in place before (the CLI's,
    Airflow's, Python's default) are restored and then receive the signal.
    """
    if threading.current_thread() is not threading.main_thread() or getattr(_tls, "on", False):
        yield
        return
    received: List[int] = []

    def _defer(signum, frame):  # noqa: ARG001 - signal handler signature
        if not received:
            logging.warning("%s received: finishing the push and its registry record first",
                            signal.Signals(signum).name)
        received.append(signum)

    previous = {s: signal.getsignal(s) for s in signums}
    for s in signums:
        signal.signal(s, _defer)
    _tls.on = True
    try:
        yield
    finally:
        _tls.on = False
        for s, handler in previous.items():
            signal.signal(s, handler)
        for s in dict.fromkeys(received):
            os.kill(os.getpid(), s)  # now handled by the restored handler
