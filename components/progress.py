"""Progress a person can follow: the records `anomaly-pipeline` shows on the terminal.

Components report progress to one named logger, never to stdout. The CLI shows
its records on the terminal (pipeline/console.py: a live bar on a TTY, plain
lines otherwise) while every other log goes to the run's log file. Elsewhere
(Airflow, Kubeflow, a notebook) they are ordinary INFO records of the logger
`anomaly_pipeline.progress`, so a task log reads as plain lines.

A record may carry a `Step` (`extra={"progress": Step(...)}`):
  task        which bar it moves (e.g. "dag", "candidate 2/3"); none: a plain line
  done/total  how far the task is
  status      short text beside the bar ("14/50 loss 0.31 val 0.35")
  keep        also a permanent line on a TTY (otherwise the bar alone shows it)
  sample      as plain lines, show only about every fifth of the total
  end         the task is over: its bar goes away
"""
import logging
from dataclasses import dataclass
from typing import Optional

LOGGER = "anomaly_pipeline.progress"


@dataclass(frozen=True)
class Step:
    task: Optional[str] = None
    done: Optional[float] = None
    total: Optional[float] = None
    status: str = ""
    label: Optional[str] = None   # the bar's text; default: the task
    keep: bool = False
    sample: bool = False
    end: bool = False


def logger() -> logging.Logger:
    return logging.getLogger(LOGGER)


def say(message: str, *args, level: int = logging.INFO) -> None:
    """A plain progress line (`pushed model: ...`)."""
    logger().log(level, message, *args, stacklevel=2)


def step(message: str, *args, task: str, done: Optional[float] = None,
         total: Optional[float] = None, status: str = "", label: Optional[str] = None,
         keep: bool = False, sample: bool = False, end: bool = False) -> None:
    """A step of a counted task (a bar on a terminal); `message` is its plain-line form."""
    logger().info(message, *args, stacklevel=2, extra={"progress": Step(
        task, done, total, status, label, keep, sample, end)})
