"""The exception the data gate raises; importable without TFX (the CLI maps it).

`str(e)` is one line starting with ``data drift:``; `anomaly-pipeline run`
prints it as ``error: data drift: ...`` and exits 2. Nothing downstream of the
gate (Transform, Trainer, Evaluator, Pusher) runs, so nothing is pushed and the
previously pushed model stays the served one.
"""
import re
from typing import Any, Dict, List, Optional

PREFIX = "data drift: "


class DataValidationError(Exception):
    """New data was rejected by the data gate (drift or schema anomalies).

    Attributes:
        summary: the readable list of findings, one paragraph.
        findings: the findings as dicts (feature, kind, text, value, ...).
        report_path: JSON report of the rejected data, if one was written.
    """

    def __init__(self, summary: str, findings: Optional[List[Dict[str, Any]]] = None,
                 report_path: Optional[str] = None) -> None:
        text = " ".join(str(summary).split())
        # Beam re-raises a DoFn's exception as type(e)(str(e) + " [while running ...]").
        text = re.sub(r" \[while running .*\]$", "", text)
        if text.startswith(PREFIX):
            text = text[len(PREFIX):]
        self.summary = text
        self.findings = list(findings or [])
        self.report_path = report_path
        super().__init__(self.message)

    @property
    def message(self) -> str:
        text = PREFIX + self.summary
        if self.report_path:
            text += f" (report: {self.report_path})"
        return text

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):  # picklable across Beam/multiprocessing boundaries
        return (type(self), (self.summary, self.findings, self.report_path))


def find_in_chain(exc: BaseException) -> Optional[DataValidationError]:
    """The DataValidationError `exc` is or wraps (a runner may re-raise it
    wrapped, e.g. Beam), or None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DataValidationError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None
