"""Anomaly thresholds, streaming error statistics and classification metrics.

Pure numpy (plus :mod:`scipy.stats` for the generalised Pareto fit of the
``evt`` method); no TensorFlow or scikit-learn, so it can be imported cheaply
inside Beam workers and unit-tested in isolation.

Contents
--------
* :class:`ErrorStats` -- streaming, mergeable summary (count, sum, sum of
  squares, min, max, bounded uniform sample for quantiles) of reconstruction
  errors, designed to be the accumulator of a Beam ``CombineFn``.
* :func:`compute_threshold` -- fits an anomaly threshold with one of the
  methods in :data:`METHODS` and returns a :class:`ThresholdResult`.
* :func:`classification_metrics`, :func:`roc_curve_points`,
  :func:`pr_curve_points` -- evaluation of ``error > threshold`` against
  ground-truth labels, returning JSON-serialisable values only.

Conventions
-----------
* A row is predicted anomalous when ``error > threshold`` (strictly).
* Labels are binary: ``1``/``True`` = anomaly, ``0``/``False`` = normal.
* Standard deviations are population standard deviations (``ddof=0``),
  like ``numpy.std``'s default.
"""
from __future__ import annotations

import math
import warnings
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Optional

import numpy as np

__all__ = [
    "DEFAULT_PARAMS",
    "METHODS",
    "ErrorStats",
    "ThresholdResult",
    "classification_metrics",
    "compute_threshold",
    "pr_curve_points",
    "roc_curve_points",
]

#: Quantiles reported by :meth:`ErrorStats.to_dict` (key -> probability).
_SUMMARY_QUANTILES: dict[str, float] = {
    "p50": 0.50,
    "p90": 0.90,
    "p95": 0.95,
    "p99": 0.99,
    "p999": 0.999,
}


# --------------------------------------------------------------------------- #
# Streaming statistics
# --------------------------------------------------------------------------- #
@dataclass(eq=False)
class ErrorStats:
    """Streaming, mergeable summary of a 1-D sample of float errors.

    Exact moments (``count``, ``sum``, ``sum_sq``, ``min``, ``max`` and a
    numerically stable sum of squared deviations used for :attr:`std`) plus a
    bounded uniform random sample of at most ``max_samples`` values used for
    quantiles.

    Sampling is a *bottom-k sketch*: every value receives a pseudo-random key
    in ``[0, 1)`` and the ``max_samples`` values with the smallest keys are
    kept.  This is a uniform sample without replacement of everything added,
    and merging two sketches (union, keep the smallest keys) is well defined,
    associative and yields a uniform sample of the union.  Keys are drawn from
    a ``numpy.random.Generator`` seeded with ``(seed, number of values added so
    far, CRC32 of the batch)``, so results are deterministic for a given
    sequence of ``add`` / ``merge`` calls and different Beam bundles (which
    hold different data) get independent keys.  While ``count <= max_samples``
    every value is retained, so quantiles are exact.

    Non-finite values (NaN, +/-inf) are not included in any statistic; they
    are counted in :attr:`n_nonfinite` so that callers can detect them.

    Instances pickle cleanly (plain numpy arrays and Python scalars only).
    """

    max_samples: int = 200_000
    seed: int = 0
    count: int = field(default=0, init=False)
    sum: float = field(default=0.0, init=False)
    sum_sq: float = field(default=0.0, init=False)
    min: float = field(default=math.inf, init=False)
    max: float = field(default=-math.inf, init=False)
    n_nonfinite: int = field(default=0, init=False)
    # Sum of squared deviations from the mean (Chan et al. parallel update).
    _m2: float = field(default=0.0, init=False, repr=False)
    # Retained sample values and their keys (may temporarily hold up to
    # 2 * max_samples entries; see _compact).
    _values: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64),
                                init=False, repr=False)
    _keys: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64),
                              init=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.max_samples, bool) or int(self.max_samples) != self.max_samples:
            raise ValueError(f"ErrorStats: max_samples must be an integer, got {self.max_samples!r}")
        if self.max_samples < 1:
            raise ValueError(f"ErrorStats: max_samples must be >= 1, got {self.max_samples}")
        self.max_samples = int(self.max_samples)
        self.seed = int(self.seed)

    # -- updates ----------------------------------------------------------- #
    def add(self, values: Any) -> "ErrorStats":
        """Add a batch of values (any array-like; flattened).  Returns ``self``."""
        arr = np.asarray(values, dtype=np.float64).reshape(-1)
        finite = np.isfinite(arr)
        n_bad = int(arr.size - np.count_nonzero(finite))
        if n_bad:
            self.n_nonfinite += n_bad
            arr = arr[finite]
        n = int(arr.size)
        if n == 0:
            return self

        batch_mean = float(np.mean(arr))
        batch_m2 = float(np.sum((arr - batch_mean) ** 2))
        self._combine_moments(n, float(np.sum(arr)), float(np.sum(arr * arr)), batch_m2,
                              float(np.min(arr)), float(np.max(arr)))

        # Keys depend on the seed, the stream position and the batch contents.
        arr = np.ascontiguousarray(arr)
        rng = np.random.default_rng([self.seed, self.count - n, zlib.crc32(arr.tobytes())])
        keys = rng.random(n)
        self._append_sample(arr, keys)
        return self

    def merge(self, other: "ErrorStats") -> "ErrorStats":
        """Merge ``other`` into ``self`` **in place** and return ``self``.

        ``other`` is not modified.  The merged sketch keeps at most
        ``self.max_samples`` values.
        """
        if not isinstance(other, ErrorStats):
            raise TypeError(f"ErrorStats.merge: expected ErrorStats, got {type(other).__name__}")
        self.n_nonfinite += other.n_nonfinite
        if other.count == 0:
            return self
        self._combine_moments(other.count, other.sum, other.sum_sq, other._m2, other.min, other.max)
        self._append_sample(other._values, other._keys)
        return self

    @classmethod
    def merge_all(cls, stats: Iterable["ErrorStats"], max_samples: int = 200_000,
                  seed: int = 0) -> "ErrorStats":
        """Return a new :class:`ErrorStats` merging every element of ``stats``."""
        out = cls(max_samples=max_samples, seed=seed)
        for s in stats:
            out.merge(s)
        return out

    def _combine_moments(self, n: int, s: float, ss: float, m2: float, lo: float, hi: float) -> None:
        n_a = self.count
        n_tot = n_a + n
        if n_a == 0:
            self._m2 = m2
        else:
            delta = s / n - self.sum / n_a
            self._m2 = self._m2 + m2 + delta * delta * n_a * n / n_tot
        self.count = n_tot
        self.sum += s
        self.sum_sq += ss
        self.min = min(self.min, lo)
        self.max = max(self.max, hi)

    def _append_sample(self, values: np.ndarray, keys: np.ndarray) -> None:
        if values.size == 0:
            return
        k = self.max_samples
        if self._values.size >= k:
            # Only values whose key beats the current k-th smallest key can enter.
            self._compact()
            cutoff = float(self._keys.max())
            keep = keys < cutoff
            values, keys = values[keep], keys[keep]
            if values.size == 0:
                return
        self._values = np.concatenate([self._values, values])
        self._keys = np.concatenate([self._keys, keys])
        # Amortise the O(size) selection: only prune when well over capacity.
        if self._values.size > 2 * k:
            self._compact()

    def _compact(self) -> None:
        """Keep exactly the ``max_samples`` entries with the smallest keys."""
        k = self.max_samples
        if self._values.size > k:
            idx = np.argpartition(self._keys, k - 1)[:k]
            idx.sort()  # keep the remaining entries in their original order
            self._values = self._values[idx]
            self._keys = self._keys[idx]

    # -- read-outs --------------------------------------------------------- #
    @property
    def mean(self) -> float:
        """Arithmetic mean (NaN when empty)."""
        return self.sum / self.count if self.count else math.nan

    @property
    def variance(self) -> float:
        """Population variance, ``ddof=0`` (NaN when empty)."""
        return max(self._m2, 0.0) / self.count if self.count else math.nan

    @property
    def std(self) -> float:
        """Population standard deviation, ``ddof=0`` (NaN when empty)."""
        return math.sqrt(self.variance) if self.count else math.nan

    @property
    def exact(self) -> bool:
        """True when every value added is retained (quantiles are exact)."""
        return self.count <= self.max_samples

    def sample(self) -> np.ndarray:
        """Retained values as a new float64 array (order unspecified but deterministic).

        All values when ``count <= max_samples``, otherwise a uniform random
        sample of ``max_samples`` of them.
        """
        self._compact()
        return self._values.copy()

    def quantile(self, q: float | Iterable[float]) -> float | np.ndarray:
        """Quantile(s) of the retained sample (``numpy.quantile``, linear)."""
        if self.count == 0:
            raise ValueError("ErrorStats.quantile: no values have been added")
        res = np.quantile(self.sample(), q)
        return float(res) if np.ndim(res) == 0 else res

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary.

        Keys: ``count, mean, std, min, max, p50, p90, p95, p99, p999`` plus
        ``n_nonfinite`` and ``exact_quantiles``.  Statistics are ``None`` when
        no finite value has been added.
        """
        out: dict[str, Any] = {"count": int(self.count)}
        if self.count == 0:
            out.update({k: None for k in ("mean", "std", "min", "max", *_SUMMARY_QUANTILES)})
        else:
            out.update(mean=float(self.mean), std=float(self.std),
                       min=float(self.min), max=float(self.max))
            qs = np.quantile(self.sample(), list(_SUMMARY_QUANTILES.values()))
            out.update({k: float(v) for k, v in zip(_SUMMARY_QUANTILES, qs)})
        out["n_nonfinite"] = int(self.n_nonfinite)
        out["exact_quantiles"] = bool(self.exact)
        return out


# --------------------------------------------------------------------------- #
# Threshold methods
# --------------------------------------------------------------------------- #
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
    "auto": {"k": 3.0, "min_anomalies": 5},
}


def _as_float(method: str, name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{method}: parameter {name!r} must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{method}: parameter {name!r} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"{method}: parameter {name!r} must be finite, got {value!r}")
    return out


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
            val = _as_float(method, name, raw)
            if val != int(val):
                raise ValueError(f"{method}: parameter {name!r} must be an integer, got {raw!r}")
            eff[name] = int(val)
        else:
            eff[name] = _as_float(method, name, raw)

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


def _as_errors(method: str, errors: Any) -> np.ndarray:
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


def _as_labels(method: str, labels: Any, n: int) -> np.ndarray:
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
    lab = _as_labels("best_f1", labels, errors.size)
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
    """best_f1 when labels hold both classes and >= min_anomalies anomalies; else mean_std.

    The fallback is fitted on the normal rows (all rows without labels), with ``k``.
    """
    lab = None if labels is None else _as_labels("auto", labels, errors.size)
    n_pos = 0 if lab is None else int(np.count_nonzero(lab))
    n_neg = errors.size - n_pos
    if lab is not None and n_pos >= p["min_anomalies"] and n_neg > 0:
        value, details = _best_f1(errors, {}, lab)
        return value, dict(details, chosen="best_f1",
                           why=f"labels with {n_pos} anomalies (>= min_anomalies="
                               f"{p['min_anomalies']}): the F1-maximising threshold")
    normal = errors if lab is None else errors[~lab]
    if normal.size == 0:
        raise ValueError("auto: no normal rows to fit the mean_std fallback on")
    value, details = _mean_std(normal, {"k": p["k"]}, None)
    why = ("no labels" if lab is None else
           f"only {n_pos} anomalies in the labels (< min_anomalies={p['min_anomalies']})")
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
              ``min_anomalies`` (5) anomalies and some normal rows, otherwise
              ``mean_std`` with ``k`` (3) on the normal rows (all rows without
              labels); ``details["chosen"]`` and ``details["why"]`` say which.
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
    arr = _as_errors(method, errors)
    value, details = METHODS[method](arr, eff, labels)
    return ThresholdResult(value=float(value), method=method, params=eff, details=details)


# --------------------------------------------------------------------------- #
# Metrics
# --------------------------------------------------------------------------- #
def _binary_clf_curve(errors: np.ndarray, lab: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative (fps, tps) at each distinct score, scores in decreasing order.

    Entry ``i`` counts the rows with ``error >= thresholds[i]``.
    """
    order = np.argsort(-errors, kind="mergesort")
    e, y = errors[order], lab[order].astype(np.int64)
    last_of_group = np.flatnonzero(np.diff(e) != 0)
    idx = np.concatenate([last_of_group, [e.size - 1]])
    tps = np.cumsum(y)[idx]
    fps = (idx + 1) - tps
    return fps, tps, e[idx]


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties replaced by their average rank."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    boundaries = np.flatnonzero(np.concatenate([[True], xs[1:] != xs[:-1], [True]]))
    starts, ends = boundaries[:-1], boundaries[1:]  # group g covers [starts[g], ends[g])
    avg = 0.5 * (starts + 1 + ends)  # mean of ranks starts+1 .. ends
    ranks = np.empty(x.size, dtype=np.float64)
    ranks[order] = np.repeat(avg, ends - starts)
    return ranks


def roc_auc(errors: Any, labels: Any) -> float:
    """ROC-AUC of `errors` as anomaly scores for 0/1 `labels` (both classes needed)."""
    errs, lab = _prepare("roc_auc", errors, labels)
    if lab.all() or not lab.any():
        raise ValueError("roc_auc: labels must contain both classes")
    return _roc_auc(errs, lab)


def _roc_auc(errors: np.ndarray, lab: np.ndarray) -> float:
    """Mann-Whitney U / (P * N) with average ranks for ties (equals sklearn)."""
    n_pos = int(np.count_nonzero(lab))
    n_neg = int(lab.size - n_pos)
    ranks = _average_ranks(errors)
    u = float(np.sum(ranks[lab])) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def _average_precision(errors: np.ndarray, lab: np.ndarray) -> float:
    """Step-wise AP: sum_i (R_i - R_{i-1}) * P_i over distinct thresholds (sklearn)."""
    fps, tps, _ = _binary_clf_curve(errors, lab)
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.concatenate([[0.0], recall])) * precision))


def _prepare(name: str, errors: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    arr = _as_errors(name, errors)
    return arr, _as_labels(name, labels, arr.size)


def classification_metrics(errors: Any, labels: Any, threshold: float) -> dict[str, Any]:
    """Metrics of ``error > threshold`` against binary ``labels``.

    Returns a JSON-serialisable dict with ``precision, recall, f1, roc_auc,
    pr_auc, accuracy, tp, fp, tn, fn, false_alarm_rate, n, n_anomalies``.

    * ``precision`` / ``recall`` / ``f1`` are ``0.0`` when undefined
      (zero denominators), like scikit-learn's ``zero_division`` fallback.
    * ``false_alarm_rate = fp / (fp + tn)``; ``None`` when there are no
      normal rows.
    * ``roc_auc`` (tie-aware, rank based) and ``pr_auc`` (average precision,
      step-wise like ``sklearn.metrics.average_precision_score``) are
      threshold-free and ``None`` when ``labels`` contain a single class.
    """
    arr, lab = _prepare("classification_metrics", errors, labels)
    thr = _as_float("classification_metrics", "threshold", threshold)
    pred = arr > thr
    tp = int(np.count_nonzero(pred & lab))
    fp = int(np.count_nonzero(pred & ~lab))
    fn = int(np.count_nonzero(~pred & lab))
    tn = int(arr.size - tp - fp - fn)
    n_pos, n_neg = tp + fn, fp + tn
    both = n_pos > 0 and n_neg > 0
    return {
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / n_pos if n_pos else 0.0,
        "f1": 2.0 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0,
        "roc_auc": _roc_auc(arr, lab) if both else None,
        "pr_auc": _average_precision(arr, lab) if both else None,
        "accuracy": (tp + tn) / arr.size,
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "false_alarm_rate": fp / n_neg if n_neg else None,
        "n": int(arr.size),
        "n_anomalies": n_pos,
    }


def _downsample_idx(length: int, max_points: int) -> np.ndarray:
    if length <= max_points:
        return np.arange(length)
    return np.unique(np.round(np.linspace(0, length - 1, max_points)).astype(np.int64))


def _check_max_points(name: str, max_points: int) -> int:
    if isinstance(max_points, bool) or int(max_points) != max_points or max_points < 2:
        raise ValueError(f"{name}: max_points must be an integer >= 2, got {max_points!r}")
    return int(max_points)


def roc_curve_points(errors: Any, labels: Any, max_points: int = 200) -> dict[str, list]:
    """ROC curve as ``{"fpr": [...], "tpr": [...], "thresholds": [...]}``.

    Points go from ``(0, 0)`` (threshold ``None``: nothing flagged) to
    ``(1, 1)``; point ``i > 0`` flags rows with ``error >= thresholds[i]``.
    Downsampled to at most ``max_points`` points, always keeping both ends.
    All lists are empty when ``labels`` contain a single class.
    """
    max_points = _check_max_points("roc_curve_points", max_points)
    arr, lab = _prepare("roc_curve_points", errors, labels)
    n_pos = int(np.count_nonzero(lab))
    n_neg = int(lab.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return {"fpr": [], "tpr": [], "thresholds": []}
    fps, tps, thr = _binary_clf_curve(arr, lab)
    fpr = np.concatenate([[0.0], fps / n_neg])
    tpr = np.concatenate([[0.0], tps / n_pos])
    thresholds: list[float | None] = [None, *map(float, thr)]
    idx = _downsample_idx(fpr.size, max_points)
    return {"fpr": fpr[idx].tolist(), "tpr": tpr[idx].tolist(),
            "thresholds": [thresholds[i] for i in idx]}


def pr_curve_points(errors: Any, labels: Any, max_points: int = 200) -> dict[str, list]:
    """Precision-recall curve as ``{"precision", "recall", "thresholds"}`` lists.

    Starts at ``recall=0, precision=1`` (threshold ``None``: nothing flagged)
    and follows decreasing thresholds; point ``i > 0`` flags rows with
    ``error >= thresholds[i]``.  Downsampled to at most ``max_points`` points,
    always keeping both ends.  All lists are empty when ``labels`` contain a
    single class.
    """
    max_points = _check_max_points("pr_curve_points", max_points)
    arr, lab = _prepare("pr_curve_points", errors, labels)
    n_pos = int(np.count_nonzero(lab))
    if n_pos == 0 or n_pos == lab.size:
        return {"precision": [], "recall": [], "thresholds": []}
    fps, tps, thr = _binary_clf_curve(arr, lab)
    precision = np.concatenate([[1.0], tps / (tps + fps)])
    recall = np.concatenate([[0.0], tps / n_pos])
    thresholds: list[float | None] = [None, *map(float, thr)]
    idx = _downsample_idx(precision.size, max_points)
    return {"precision": precision[idx].tolist(), "recall": recall[idx].tolist(),
            "thresholds": [thresholds[i] for i in idx]}


def validate_params(method: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Checks a method name and its parameters before any work is done.

    Returns the effective parameters (defaults filled in); raises ValueError
    naming the method and the problem, e.g. for a typo on the command line.
    """
    if method not in METHODS:
        raise ValueError(f"unknown threshold method {method!r}; valid: {', '.join(sorted(METHODS))}")
    return _resolve_params(method, params)
