"""`run` as the one writer of its --output: the lock, SIGTERM, this run's id.

    with guard.exclusive(cfg) as run_id:
        ...  # the whole run, from the served-model check to the summary

- the lock on the output (components/output_lock.py): another run holding it
  makes this one wait up to `--wait` seconds (saying so once), then stop with
  exit 2 and one line naming the holder; a dead holder's lock is taken over;
- (the log file is the command's console.Session: `<output>/logs/`, pipeline/console.py);
- SIGTERM raises components.faults.Terminated, so the run stops like an
  interrupted one (the Pusher holds it off until its push is whole);
- `run_id`: the name of this run's pipeline_run context in ML Metadata
  (pipeline/runners/in_process.py), so the summary reads this run and no other;
- on failure, the exception learns which component was running and where the
  output, ML Metadata and MLflow's store are, for its one error line.
"""
import contextlib
import datetime
import logging
import os
import signal
import threading
from typing import Iterator, Optional

from components import faults, output_lock, progress
from pipeline.cli import failures


def _announce(cfg):
    def on_wait(holder) -> None:
        progress.say("waiting up to %s s for the run holding %s: %s", f"{cfg.lock_wait:g}",
                     cfg.output_dir, output_lock.describe(holder))
    return on_wait


@contextlib.contextmanager
def _sigterm_raises() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):  # noqa: ARG001 - signal handler signature
        raise faults.Terminated(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def running_component(cfg, run_id: str) -> Optional[str]:
    """The component of run `run_id` that had started and not finished (ML Metadata)."""
    if getattr(cfg, "metadata_mysql", None) or not os.path.exists(cfg.metadata_path):
        return None
    try:
        from pipeline import lineage

        rec = lineage.RunRecord(cfg.metadata_path, run_id=run_id)
        unfinished = [(e.id, name) for name, e in rec.executions.items()
                      if e.last_known_state not in (lineage.STATE.COMPLETE, lineage.STATE.CACHED)]
        return max(unfinished)[1] if unfinished else None
    except Exception:  # noqa: BLE001 - context for a message, never a second failure
        return None


def _registry_db(cfg) -> Optional[str]:
    uri = cfg.registry_tracking_uri
    return uri[len("sqlite:///"):] if uri.startswith("sqlite:///") else None


@contextlib.contextmanager
def exclusive(cfg) -> Iterator[str]:
    """Holds the output for the block; yields this run's pipeline run id."""
    run_id = datetime.datetime.now().isoformat()
    try:
        with output_lock.hold(cfg.output_dir, wait=cfg.lock_wait, on_wait=_announce(cfg)):
            logging.info("holding %s (pipeline run %s)", output_lock.lock_path(
                cfg.output_dir), run_id)
            with _sigterm_raises():
                yield run_id
    except BaseException as e:
        if not isinstance(e, (output_lock.OutputLocked, SystemExit)):
            failures.annotate(e, output=cfg.output_dir, metadata=cfg.metadata_path,
                              registry_db=_registry_db(cfg),
                              component=running_component(cfg, run_id))
        raise
