"""Streaming, mergeable statistics of reconstruction errors (pure numpy).

`ErrorStats` is the accumulator of the evaluator's Beam combine
(`error_pass.py`): exact moments plus a bounded uniform sample for quantiles.
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

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
