"""Checks on the arrays the threshold methods and metrics take (pure numpy)."""
from __future__ import annotations

import math
from typing import Any

import numpy as np


def as_float(method: str, name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{method}: parameter {name!r} must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{method}: parameter {name!r} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"{method}: parameter {name!r} must be finite, got {value!r}")
    return out

def as_errors(method: str, errors: Any) -> np.ndarray:
    try:
        arr = np.asarray(errors, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{method}: errors must be numeric ({exc})") from None
    if arr.size == 0:
        raise ValueError(f"{method}: errors is empty")
    n_bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
    if n_bad:
        raise ValueError(f"{method}: errors contain {n_bad} non-finite value(s) (NaN or inf)")
    return arr


def as_labels(method: str, labels: Any, n: int) -> np.ndarray:
    """Validate binary labels (0/1 or bool) of length ``n``; return a bool array."""
    if labels is None:
        raise ValueError(f"{method}: labels are required")
    try:
        lab = np.asarray(labels, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{method}: labels must be numeric 0/1 or bool ({exc})") from None
    if lab.size != n:
        raise ValueError(f"{method}: labels has {lab.size} element(s) but errors has {n}")
    if not np.all((lab == 0.0) | (lab == 1.0)):
        bad = np.unique(lab[~((lab == 0.0) | (lab == 1.0))])[:5]
        raise ValueError(f"{method}: labels must be binary (0/1 or bool); found {bad.tolist()}")
    return lab == 1.0

