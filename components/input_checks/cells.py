"""What a cell and a data record must look like: numbers, missing values, the label."""
import math
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from components.input_checks.files import guess_delimiter
from components.input_checks.messages import show
from components.input_checks.problems import (BAD_LABEL, MISSING, NON_FINITE, NON_NUMERIC,
                                              RAGGED)

WS = " \t\r\n\f\v"
INT64_BOUND = 2.0 ** 63          # |x| >= this: re-check in Python (int64 range)
NUM_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
INT_RE = re.compile(r"[+-]?\d+", re.ASCII)
NONFINITE_RE = re.compile(r"[+-]?(?:inf|infinity|nan)", re.ASCII | re.IGNORECASE)
# Cells read as "missing" (compared lower-cased, after stripping whitespace).
NA_TOKENS = frozenset({"na", "n/a", "#n/a", "null", "none"})


def classify_feature(value: str) -> Tuple[Optional[str], str]:
    """(problem class or None, message) for one feature cell."""
    s = value.strip(WS)
    if not s:
        return MISSING, "missing value (empty cell)"
    if s.lower() in NA_TOKENS:
        return MISSING, f"missing value {show(value)}"
    if NUM_RE.fullmatch(s):
        x = float(s)
        if not math.isfinite(x):
            return NON_FINITE, f"value {show(value)} overflows to infinity"
        if abs(x) >= INT64_BOUND and INT_RE.fullmatch(s) \
                and not -2 ** 63 <= int(s) < 2 ** 63:
            return NON_NUMERIC, (f"integer {show(value)} does not fit in 64 bits (TFX would "
                                 f"read the column as text); write it as a float, e.g. {x:.6g}")
        return None, ""
    if NONFINITE_RE.fullmatch(s):
        return NON_FINITE, f"non-finite value {show(value)}"
    return NON_NUMERIC, f"non-numeric value {show(value)}"


def label_problem(value: Optional[str]) -> Optional[str]:
    """Why `value` is not a valid 0/1 label, or None when it is."""
    s = (value or "").strip(WS)
    if not s:
        return "empty label; expected 0 or 1"
    if NUM_RE.fullmatch(s) and float(s) in (0.0, 1.0):
        return None
    return f"label must be 0 or 1, found {show(value or '')}"


@dataclass(frozen=True)
class Spec:
    """What a data row must look like."""

    columns: Tuple[str, ...]
    features: Tuple[Tuple[int, str], ...]  # (index, name)
    label: Optional[Tuple[int, str]]

    @property
    def ncols(self) -> int:
        return len(self.columns)


def check_record(row: List[str], raw: str, spec: Spec) -> List[Tuple[str, Optional[str], str]]:
    """Problems of one non-blank record: ``(class, column, message)``, one per class."""
    n = len(row)
    if n != spec.ncols:
        text = f"expected {spec.ncols} fields, found {n}"
        if n == 1 and spec.ncols > 1:
            guess = guess_delimiter(row[0])
            if guess:
                text += f"; is the delimiter {guess}? expected ','"
        lines = raw.count("\n") + (0 if raw.endswith("\n") else 1)
        if lines > 1:
            text += f" (the record spans {lines} lines: an unbalanced quote?)"
        return [(RAGGED, None, text)]
    found: Dict[str, Tuple[Optional[str], str]] = {}
    try:  # fast path: plain finite numbers everywhere
        values = [float(row[i]) for i, _ in spec.features]
        ok = (math.isfinite(sum(values)) and -INT64_BOUND < min(values)
              and max(values) < INT64_BOUND and raw.isascii() and "_" not in raw)
    except ValueError:
        ok = False
    if not ok:
        for i, name in spec.features:
            cls, text = classify_feature(row[i])
            if cls is not None and cls not in found:
                found[cls] = (name, text)
    if spec.label is not None:
        value = row[spec.label[0]]
        if value != "0" and value != "1":
            text = label_problem(value)
            if text is not None:
                found[BAD_LABEL] = (spec.label[1], text)
    return [(cls, col, text) for cls, (col, text) in found.items()]


