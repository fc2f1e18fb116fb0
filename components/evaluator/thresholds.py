"""Anomaly thresholds fitted on reconstruction errors (pure numpy).

Pure numpy (plus :mod:`scipy.stats` for the generalised Pareto fit of the
``evt`` method); no TensorFlow or scikit-learn, so it can be imported cheaply
inside Beam workers and unit-tested in isolation. :func:`compute_threshold`
fits a threshold with one of the methods in :data:`METHODS` and returns a
:class:`ThresholdResult`; streaming error statistics are in
``error_stats.py``, metrics and curves in ``metrics.py``.

* A row is predicted anomalous when ``error > threshold`` (strictly).
* Standard deviations are population standard deviations (``ddof=0``),
  like ``numpy.std``'s default.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional

import numpy as np

from components.evaluator.arrays import as_errors, as_float, as_labels

__all__ = ["DEFAULT_PARAMS", "METHODS", "ThresholdResult", "compute_threshold",
           "validate_params"]


@dataclass(frozen=True)
class ThresholdResult:
    """Outcome of :func:`compute_threshold`.

    Attributes:
        value: the threshold; a row is anomalous when ``error > value``.
        method: name of the method used (a key of :data:`METHODS`).
        params: effective parameters, defaults included.
        details: method-specific diagnostics (JSON-serialisable).
    """

    value: float
    method: str
    params: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict (JSON-serialisable) view."""
        return {"value": self.value, "method": self.method,
                "params": dict(self.params), "details": dict(self.details)}


#: Default parameters of every method (also the set of accepted keys).
DEFAULT_PARAMS: dict[str, dict[str, Any]] = {
    "mean_std": {"k": 3.0},
    "quantile": {"q": 0.99},
    "contamination": {"c": 0.01},
    "mad": {"k": 3.0, "scale": 1.4826},
    "best_f1": {},
    "evt": {"initial_quantile": 0.98, "risk": 1e-3, "min_excesses": 10},
    # auto: k for mean + k*std of labelled normal rows (too few anomalies to pick by F1);
    # mad_k for median + mad_k*1.4826*MAD of all rows when there are no labels (robust
    # to the anomalies among them; docs/quality.md, "Without labels").
    "auto": {"k": 3.0, "min_anomalies": 5, "mad_k": 3.0},
}

def _check_open_unit(method: str, name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{method}: parameter {name!r} must be in the open interval (0, 1), got {value}")


def _resolve_params(method: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Merge ``params`` over the defaults, coerce types and validate ranges."""
    defaults = DEFAULT_PARAMS[method]
    params = dict(params or {})
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        accepted = ", ".join(sorted(defaults)) or "(none)"
        raise ValueError(f"{method}: unknown parameter(s) {unknown}; accepted parameters: {accepted}")
    eff: dict[str, Any] = {}
    for name, default in defaults.items():
        raw = params.get(name, default)
        if isinstance(default, int) and not isinstance(default, bool):
            val = as_float(method, name, raw)
            if val != int(val):
                raise ValueError(f"{method}: parameter {name!r} must be an integer, got {raw!r}")
            eff[name] = int(val)
        else:
            eff[name] = as_float(method, name, raw)

    if method == "auto" and eff["mad_k"] < 0:
        raise ValueError(f"auto: parameter 'mad_k' must be >= 0, got {eff['mad_k']}")
    if method in ("mean_std", "mad", "auto") and eff["k"] < 0:
        raise ValueError(f"{method}: parameter 'k' must be >= 0, got {eff['k']}")
    if method == "mad" and eff["scale"] <= 0:
        raise ValueError(f"mad: parameter 'scale' must be > 0, got {eff['scale']}")
    if method == "quantile":
        _check_open_unit(method, "q", eff["q"])
    if method == "contamination":
        _check_open_unit(method, "c", eff["c"])
    if method == "evt":
        _check_open_unit(method, "initial_quantile", eff["initial_quantile"])
        _check_open_unit(method, "risk", eff["risk"])
        if eff["min_excesses"] < 1:
            raise ValueError(f"evt: parameter 'min_excesses' must be >= 1, got {eff['min_excesses']}")
    return eff

def _mean_std(errors: np.ndarray, p: dict[str, Any], labels: np.ndarray | None) -> tuple[float, dict]:
    mean, std = float(np.mean(errors)), float(np.std(errors))
    return mean + p["k"] * std, {"mean": mean, "std": std, "n": int(errors.size)}


def _quantile(errors: np.ndarray, p: dict[str, Any], labels: np.ndarray | None) -> tuple[float, dict]:
    return float(np.quantile(errors, p["q"])), {"n": int(errors.size)}


def _contamination(errors: np.ndarray, p: dict[str, Any], labels: np.ndarray | None) -> tuple[float, dict]:
    q = 1.0 - p["c"]
    return float(np.quantile(errors, q)), {"quantile": q, "n": int(errors.size)}


def _mad(errors: np.ndarray, p: dict[str, Any], labels: np.ndarray | None) -> tuple[float, dict]:
    median = float(np.median(errors))
    mad = float(np.median(np.abs(errors - median)))
    return median + p["k"] * p["scale"] * mad, {"median": median, "mad": mad, "n": int(errors.size)}


def _best_f1(errors: np.ndarray, p: dict[str, Any], labels: np.ndarray | None) -> tuple[float, dict]:
    lab = as_labels("best_f1", labels, errors.size)
    n_pos = int(np.count_nonzero(lab))
    n_neg = int(lab.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        raise ValueError(
            f"best_f1: labels must contain both classes (got {n_pos} anomalies and {n_neg} normal rows)")

    # Candidate i (i = 0..m-1): predict anomaly for every error >= uniq[i];
    # realised by a threshold strictly between uniq[i-1] and uniq[i].
    order = np.argsort(errors, kind="mergesort")
    e_sorted, l_sorted = errors[order], lab[order]
    uniq, starts = np.unique(e_sorted, return_index=True)
    pos_before = np.concatenate([[0], np.cumsum(l_sorted)])[starts]  # positives with error < uniq[i]
    tp = n_pos - pos_before
    fp = (errors.size - starts) - tp
    f1 = 2.0 * tp / (tp + fp + n_pos)  # = 2tp / (2tp + fp + fn)
    # Among equal F1 values prefer the highest threshold (fewest alerts).
    best = int(f1.size - 1 - np.argmax(f1[::-1]))

    if best == 0:
        gap = (uniq[1] - uniq[0]) if uniq.size > 1 else max(abs(float(uniq[0])), 1.0)
        threshold = float(uniq[0] - 0.5 * gap)
    else:
        lo, hi = float(uniq[best - 1]), float(uniq[best])
        threshold = lo + 0.5 * (hi - lo)
        if not lo <= threshold < hi:  # adjacent floats: rounding reached `hi`
            threshold = lo
    tp_b, fp_b = int(tp[best]), int(fp[best])
    details = {
        "f1": float(f1[best]),
        "precision": tp_b / (tp_b + fp_b),
        "recall": tp_b / n_pos,
        "tp": tp_b,
        "fp": fp_b,
        "fn": n_pos - tp_b,
        "n": int(errors.size),
        "n_anomalies": n_pos,
        "n_candidates": int(uniq.size),
    }
    return threshold, details


def _evt(errors: np.ndarray, p: dict[str, Any], labels: np.ndarray | None) -> tuple[float, dict]:
    risk = p["risk"]
    n = int(errors.size)
    u = float(np.quantile(errors, p["initial_quantile"]))
    excesses = errors[errors > u] - u
    n_excess = int(excesses.size)
    details: dict[str, Any] = {"shape": None, "scale": None, "initial_threshold": u,
                               "n_excess": n_excess, "n": n, "fallback": False, "reason": None}

    def fallback(reason: str) -> tuple[float, dict]:
        details.update(fallback=True, reason=reason)
        return float(np.quantile(errors, 1.0 - risk)), details

    if n_excess < p["min_excesses"]:
        return fallback(f"only {n_excess} excess(es) over the initial threshold "
                        f"(< min_excesses={p['min_excesses']}); used quantile(1 - risk)")
    if risk >= n_excess / n:
        return fallback(f"risk {risk} >= tail fraction {n_excess / n:.6g} above the initial "
                        "threshold; used quantile(1 - risk)")

    from scipy.stats import genpareto  # local import keeps module import light

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            shape, _, scale = genpareto.fit(excesses, floc=0)
    except Exception as exc:  # noqa: BLE001 - any optimiser failure -> fallback
        return fallback(f"generalised Pareto fit failed ({exc}); used quantile(1 - risk)")
    shape, scale = float(shape), float(scale)
    if not (math.isfinite(shape) and math.isfinite(scale) and scale > 0):
        return fallback(f"degenerate generalised Pareto fit (shape={shape}, scale={scale}); "
                        "used quantile(1 - risk)")
    details.update(shape=shape, scale=scale)

    r = risk * n / n_excess
    if abs(shape) < 1e-6:
        threshold = u - scale * math.log(r)
    else:
        threshold = u + (scale / shape) * (r ** (-shape) - 1.0)
    if not math.isfinite(threshold):
        return fallback(f"non-finite EVT threshold (shape={shape}, scale={scale}); "
                        "used quantile(1 - risk)")
    return float(threshold), details


def _auto(errors: np.ndarray, p: dict[str, Any], labels: np.ndarray | None) -> tuple[float, dict]:
    """best_f1 when labels hold both classes and >= min_anomalies anomalies; with labels
    but fewer anomalies, mean + k*std of the normal rows' errors; without labels,
    median + mad_k * 1.4826 * MAD of all rows' errors.

    Without labels the eval rows hold the anomalies too: they inflate the mean and
    the std (mean + 3*std then flags almost nothing), not the median and the MAD.
    """
    lab = None if labels is None else as_labels("auto", labels, errors.size)
    n_pos = 0 if lab is None else int(np.count_nonzero(lab))
    n_neg = errors.size - n_pos
    if lab is not None and n_pos >= p["min_anomalies"] and n_neg > 0:
        value, details = _best_f1(errors, {}, lab)
        return value, dict(details, chosen="best_f1",
                           why=f"labels with {n_pos} anomalies (>= min_anomalies="
                               f"{p['min_anomalies']}): the F1-maximising threshold")
    if lab is None:
        value, details = _mad(errors, {"k": p["mad_k"], "scale": DEFAULT_PARAMS["mad"]["scale"]},
                              None)
        return value, dict(details, chosen="mad",
                           why=f"no labels: median + {p['mad_k']:g}·MAD of the eval rows' "
                               f"errors (robust to the anomalies among them)")
    normal = errors[~lab]
    if normal.size == 0:
        raise ValueError("auto: no normal rows to fit the mean_std fallback on")
    value, details = _mean_std(normal, {"k": p["k"]}, None)
    why = f"only {n_pos} anomalies in the labels (< min_anomalies={p['min_anomalies']})"
    return value, dict(details, chosen="mean_std",
                       why=f"{why}: mean + {p['k']:g} std of the normal rows' errors")


_MethodFn = Callable[[np.ndarray, dict, Optional[np.ndarray]], "tuple[float, dict[str, Any]]"]

#: Registry of threshold methods: name -> implementation
#: ``fn(errors, effective_params, labels) -> (threshold, details)``.
METHODS: dict[str, _MethodFn] = {
    "mean_std": _mean_std,
    "quantile": _quantile,
    "contamination": _contamination,
    "mad": _mad,
    "best_f1": _best_f1,
    "evt": _evt,
    "auto": _auto,
}


def compute_threshold(method: str, errors: Any, params: Mapping[str, Any] | None = None,
                      labels: Any | None = None) -> ThresholdResult:
    """Fit an anomaly threshold; rows with ``error > threshold`` are anomalous.

    Args:
        method: one of :data:`METHODS`:

            * ``mean_std`` -- ``mean + k * std`` (population std); ``k=3``.
            * ``quantile`` -- ``np.quantile(errors, q)``; ``q=0.99``.
            * ``contamination`` -- the ``1 - c`` quantile for an expected
              anomaly rate ``c``; ``c=0.01``.
            * ``mad`` -- ``median + k * scale * MAD``; ``k=3``,
              ``scale=1.4826`` (consistent with std for normal data).
            * ``best_f1`` -- threshold maximising F1 against ``labels``
              (O(n log n)); no parameters.
            * ``evt`` -- peaks-over-threshold with a generalised Pareto tail
              fitted above the ``initial_quantile`` (0.98) for a false-alarm
              probability ``risk`` (1e-3); falls back to the ``1 - risk``
              quantile with fewer than ``min_excesses`` (10) excesses or when
              ``risk`` is not below the fraction of excesses.
            * ``auto`` -- ``best_f1`` when ``labels`` hold at least
              ``min_anomalies`` (5) anomalies and some normal rows; with fewer,
              ``mean_std`` with ``k`` (3) on the normal rows; without labels
              ``mad`` with ``mad_k`` (3) on all rows; ``details["chosen"]`` and
              ``details["why"]`` say which.
        errors: reconstruction errors the threshold is fitted on -- those of
            normal rows, except for ``best_f1`` (all labelled eval rows).
            Any array-like; flattened.
        params: method parameters; missing ones take :data:`DEFAULT_PARAMS`
            values, unknown keys are rejected.
        labels: binary labels aligned with ``errors`` (required by
            ``best_f1``, ignored otherwise).

    Raises:
        ValueError: unknown method, unknown/invalid parameter, empty or
            non-finite errors, or missing/invalid labels for ``best_f1``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown threshold method {method!r}; valid methods: {', '.join(sorted(METHODS))}")
    eff = _resolve_params(method, params)
    arr = as_errors(method, errors)
    value, details = METHODS[method](arr, eff, labels)
    return ThresholdResult(value=float(value), method=method, params=eff, details=details)


def validate_params(method: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Checks a method name and its parameters before any work is done.

    Returns the effective parameters (defaults filled in); raises ValueError
    naming the method and the problem, e.g. for a typo on the command line.
    """
    if method not in METHODS:
        raise ValueError(f"unknown threshold method {method!r}; valid: {', '.join(sorted(METHODS))}")
    return _resolve_params(method, params)
