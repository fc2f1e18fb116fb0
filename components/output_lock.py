"""One writer per --output: an fcntl lock on `<output>/.lock` that names its holder.

`anomaly-pipeline run` holds it from its first look at the output (the served
model's columns) to its summary, so the ML Metadata store, `serving_model/`,
`registry.json` and MLflow under one output see one run at a time, and each
run's Evaluator is judged against the model the previous run pushed. The
Pusher holds it around publishing a version and recording it
(components/registry/executor.py): Airflow runs each component in a process
of its own, so there the Pusher's work is what the lock guards.

The file holds the holder as JSON: pid, host, started (UTC), command, and the
pid's start time (to tell a reused pid). The kernel drops an flock when its
process dies, so a killed run's lock is free and the next run takes it over
(and logs whose it was). If the flock is still held although the recorded pid
is gone on this host (a child process inherited the descriptor), the lock is
stale too: it is replaced, under a second lock so that two runs never both
break it. Within one process the lock is re-entrant (the CLI holds it, the
Pusher in the same process takes it again for free). Local paths only.
"""
import contextlib
import datetime
import fcntl
import json
import logging
import os
import socket
import sys
import threading
import time
from typing import Any, Callable, Dict, Iterator, Optional

from components import progress

LOCK_FILE = ".lock"
GUARD_FILE = ".lock.guard"
POLL_SECONDS = 0.5

_held: Dict[str, list] = {}          # lock path -> [fd, depth]
_held_lock = threading.Lock()


class OutputLocked(Exception):
    """Another run holds the output (reported as one line, exit 2)."""

    def __init__(self, output_dir: str, holder: Optional[Dict[str, Any]], waited: float = 0.0):
        self.output_dir, self.holder, self.waited = output_dir, holder or {}, waited
        waited_text = f" (waited {waited:g} s)" if waited else ""
        super().__init__(f"{output_dir}: in use by another run{waited_text}: "
                         f"{describe(self.holder)}; wait for it with `run --wait SECONDS`, "
                         f"or use another --output")


def lock_path(output_dir: str) -> str:
    return os.path.join(os.path.abspath(output_dir), LOCK_FILE)


def describe(holder: Optional[Dict[str, Any]]) -> str:
    if not holder:
        return "a process that is just starting (no holder recorded yet)"
    text = (f"pid {holder.get('pid')} on {holder.get('host')}, started "
            f"{holder.get('started')}")
    if holder.get("command"):
        text += f" ({holder['command']})"
    return text


def _proc_start(pid: int) -> Optional[str]:
    """The start time of `pid` in clock ticks since boot (/proc), None if unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        if fields[0] in ("Z", "X"):  # a zombie has finished
            return "dead"
        return fields[19]
    except (OSError, IndexError):
        return None


def holder_alive(holder: Dict[str, Any]) -> bool:
    """Whether the recorded holder still runs (True when that cannot be told:
    another host, or no pid)."""
    pid = holder.get("pid")
    if not isinstance(pid, int) or holder.get("host") != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    start = _proc_start(pid)
    if start == "dead":
        return False
    return start is None or holder.get("pid_start") in (None, start)


def me(command: Optional[str] = None) -> Dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.datetime.now(datetime.timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ"),
            "command": command or " ".join(os.path.basename(a) if i == 0 else a
                                           for i, a in enumerate(sys.argv))[:300],
            "pid_start": _proc_start(os.getpid())}


def _read(fd: int) -> Optional[Dict[str, Any]]:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = os.read(fd, 65536)
        value = json.loads(data.decode("utf-8")) if data.strip() else None
        return value if isinstance(value, dict) else None
    except (OSError, ValueError):
        return None


def read_holder(output_dir: str) -> Optional[Dict[str, Any]]:
    """The holder recorded in the lock file (also after it released it), or None."""
    try:
        fd = os.open(lock_path(output_dir), os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return _read(fd)
    finally:
        os.close(fd)


def _write(fd: int, holder: Dict[str, Any]) -> None:
    data = json.dumps(holder, sort_keys=True).encode("utf-8") + b"\n"
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
    os.fsync(fd)


def _try_lock(path: str):
    """(fd, None) holding the flock on the file now at `path`, or (None, holder)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read(fd)
        os.close(fd)
        return None, holder or {}
    except BaseException:
        os.close(fd)
        raise
    try:
        same = os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        same = False
    if not same:  # replaced while we waited for it: try the new file
        os.close(fd)
        return None, None
    return fd, None


def _break_stale(output_dir: str, path: str, stale: Dict[str, Any], mine: Dict[str, Any]):
    """Replaces a lock file whose flock outlived its recorded holder; returns our fd or None."""
    guard = os.open(os.path.join(os.path.dirname(path), GUARD_FILE),
                    os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(guard, fcntl.LOCK_EX)
        fd, holder = _try_lock(path)
        if fd is not None or holder is None:
            return fd
        if holder != stale or holder_alive(holder):
            return None  # someone else broke it meanwhile, or it is alive after all
        new = f"{path}.new-{os.getpid()}"
        fd = os.open(new, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        _write(fd, mine)
        os.rename(new, path)
        progress.say("%s: replaced the stale lock of %s (not running; a process it "
                     "started still held the file)", output_dir, describe(stale),
                     level=logging.WARNING)
        return fd
    finally:
        os.close(guard)


def acquire(output_dir: str, wait: float = 0.0, command: Optional[str] = None,
            on_wait: Optional[Callable[[Dict[str, Any]], None]] = None,
            poll: float = POLL_SECONDS):
    """(fd, previous holder) once the lock is ours; raises OutputLocked after `wait` s."""
    path = lock_path(output_dir)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    mine = me(command)
    started = time.monotonic()
    announced = False
    while True:
        fd, holder = _try_lock(path)
        if fd is None and holder and not holder_alive(holder):
            fd = _break_stale(output_dir, path, holder, mine)
            if fd is not None:
                return fd, holder
        if fd is not None:
            previous = _read(fd)
            _write(fd, mine)
            if previous and not holder_alive(previous):
                # A progress line: on the terminal and in the log, for every caller.
                progress.say("%s: took over the lock of %s (not running)", output_dir,
                             describe(previous), level=logging.WARNING)
            return fd, previous
        if holder is None:
            continue  # the file was replaced: try again at once
        waited = time.monotonic() - started
        if waited >= wait:
            raise OutputLocked(os.path.abspath(output_dir), holder, waited=round(wait, 1))
        if on_wait is not None and not announced:
            on_wait(holder)
            announced = True
        time.sleep(min(poll, max(0.01, wait - waited)))


def release(fd: int) -> None:
    try:
        os.ftruncate(fd, 0)  # no holder recorded: a finished run leaves no name behind
    except OSError:
        pass
    os.close(fd)  # drops the flock


@contextlib.contextmanager
def hold(output_dir: str, wait: float = 0.0, command: Optional[str] = None,
         on_wait: Optional[Callable[[Dict[str, Any]], None]] = None) -> Iterator[Optional[dict]]:
    """Holds the lock on `output_dir` for the block (re-entrant within a process).

    Yields the previous holder's record (None if there was none or the lock was
    already held by this process). Raises OutputLocked when another process
    holds it for longer than `wait` seconds.
    """
    path = lock_path(output_dir)
    with _held_lock:
        entry = _held.get(path)
        if entry is not None:
            entry[1] += 1
    if entry is not None:
        try:
            yield None
        finally:
            with _held_lock:
                entry[1] -= 1
        return
    fd, previous = acquire(output_dir, wait, command, on_wait)
    with _held_lock:
        _held[path] = [fd, 1]
    try:
        yield previous
    finally:
        with _held_lock:
            del _held[path]
        release(fd)


def held_here(output_dir: str) -> bool:
    """Whether this process holds the lock on `output_dir`."""
    with _held_lock:
        return lock_path(output_dir) in _held
