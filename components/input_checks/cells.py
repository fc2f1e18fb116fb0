"""What a cell and a data record must look like: numbers, missing values, the label."""
import math
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from components.input_checks.files import guess_delimiter
from components.input_checks.messages import show
from components.input_checks.problems import (BAD_LABEL, MISSING, NON_FINITE, NON_NUMERIC,
                                              RAGGED)

NUMBER, TEXT = "number", "text"  # what a column's cells must be

WS = " \t\r\n\f\v"
NUM_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
NONFINITE_RE = re.compile(r"[+-]?(?:inf|infinity|nan)", re.ASCII | re.IGNORECASE)
# Cells read as "missing" (compared lower-cased, after stripping whitespace).
NA_TOKENS = frozenset({"na", "n/a", "#n/a", "null", "none"})


def classify_feature(value: str) -> Tuple[Optional[str], str]:
    """(problem class or None, message) for one numeric cell; `nan` is a missing value."""
    s = value.strip(WS)
    if not s:
        return MISSING, "missing value (empty cell)"
    if s.lower() in NA_TOKENS or s.lower() in ("nan", "+nan", "-nan"):
        return MISSING, f"missing value {show(value)}"
    if NUM_RE.fullmatch(s):
        if not math.isfinite(float(s)):
            return NON_FINITE, f"value {show(value)} overflows to infinity"
        return None, ""
    if NONFINITE_RE.fullmatch(s):
        return NON_FINITE, f"infinite value {show(value)}"
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
    """What a data row must look like.

    `features`: the columns whose cells must be numbers (index, name);
    `texts`: the other non-label columns (categorical, passthrough: any UTF-8
    text, empty allowed); `missing_ok`: an empty number cell is fine (imputed)
    rather than a problem of class MISSING; `single_line`: a record must fit on
    one line (batch scoring splits its input at line ends).
    """

    columns: Tuple[str, ...]
    features: Tuple[Tuple[int, str], ...]  # (index, name) of the number columns
    label: Optional[Tuple[int, str]]
    texts: Tuple[Tuple[int, str], ...] = ()
    delimiter: str = ","
    missing_ok: bool = False
    single_line: bool = False

    @property
    def ncols(self) -> int:
        return len(self.columns)


def check_record(row: List[str], raw: str, spec: Spec, missing: Optional[Dict[str, int]] = None
                 ) -> List[Tuple[str, Optional[str], str]]:
    """Problems of one non-blank record: ``(class, column, message)``, one per class and
    column. Empty number cells are counted per column into `missing` (when given)."""
    n = len(row)
    if n != spec.ncols:
        text = f"expected {spec.ncols} fields, found {n}"
        if n == 1 and spec.ncols > 1:
            guess = guess_delimiter(row[0], spec.delimiter)
            if guess:
                text += f"; is the delimiter {guess}? pass --delimiter"
        lines = raw.count("\n") + (0 if raw.endswith("\n") else 1)
        if lines > 1:
            text += f" (the record spans {lines} lines: an unbalanced quote?)"
        return [(RAGGED, None, text)]
    found: Dict[Tuple[str, Optional[str]], str] = {}
    try:  # fast path: plain finite numbers everywhere
        ok = (math.isfinite(sum(float(row[i]) for i, _ in spec.features))
              and raw.isascii() and "_" not in raw)
    except ValueError:
        ok = False
    if not ok:
        for i, name in spec.features:
            cls, text = classify_feature(row[i])
            if cls == MISSING:
                if missing is not None:
                    missing[name] = missing.get(name, 0) + 1
                if spec.missing_ok:
                    continue
            if cls is not None and (cls, name) not in found and not (
                    cls != NON_NUMERIC and any(c == cls for c, _ in found)):
                found[(cls, name)] = text
    if spec.label is not None:
        value = row[spec.label[0]]
        if value != "0" and value != "1":
            text = label_problem(value)
            if text is not None:
                found[(BAD_LABEL, spec.label[1])] = text
    return [(cls, col, text) for (cls, col), text in found.items()]
