"""components/evaluator/error_stats.py: the streaming, mergeable error statistics."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from components.evaluator.error_stats import ErrorStats



# --------------------------------------------------------------------------- #
# ErrorStats
# --------------------------------------------------------------------------- #
def test_error_stats_merge_of_halves_equals_one_pass(rng):
    x = rng.lognormal(size=10_001) + 1e3  # offset stresses the variance update
    one = ErrorStats().add(x)
    a = ErrorStats()
    for chunk in np.array_split(x[:4000], 7):
        a.add(chunk)
    b = ErrorStats().add(x[4000:])
    merged = a.merge(b)
    assert merged is a
    for s in (one, merged):
        assert s.count == x.size
        assert s.mean == pytest.approx(np.mean(x), rel=1e-9, abs=1e-9)
        assert s.std == pytest.approx(np.std(x), rel=1e-9, abs=1e-9)
        assert s.min == x.min() and s.max == x.max()
        assert s.sum == pytest.approx(x.sum(), rel=1e-12)
        assert s.sum_sq == pytest.approx(np.sum(x * x), rel=1e-12)
        np.testing.assert_array_equal(np.sort(s.sample()), np.sort(x))
        d = s.to_dict()
        for key, q in [("p50", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99), ("p999", 0.999)]:
            assert d[key] == np.quantile(x, q)
        assert d["exact_quantiles"] is True
    d_one, d_merged = one.to_dict(), merged.to_dict()
    assert d_merged.pop("std") == pytest.approx(d_one.pop("std"), rel=1e-12)
    assert d_one == d_merged
    json.dumps(merged.to_dict())


def test_error_stats_bounded_sample_and_uniform_merge(rng):
    zeros, ones = np.zeros(30_000), np.ones(30_000)
    a = ErrorStats(max_samples=2_000, seed=7)
    for chunk in np.array_split(zeros, 13):
        a.add(chunk)
    b = ErrorStats(max_samples=2_000, seed=7).add(ones)
    assert a.sample().size == 2_000 and not a.exact
    ab = ErrorStats.merge_all([a, b], max_samples=2_000, seed=7)
    ba = ErrorStats.merge_all([b, a], max_samples=2_000, seed=7)
    s = ab.sample()
    assert s.size == 2_000
    np.testing.assert_array_equal(np.sort(s), np.sort(ba.sample()))  # order independent
    assert abs(s.mean() - 0.5) < 0.05  # uniform over the union
    assert ab.mean == 0.5 and ab.count == 60_000

    x = rng.exponential(size=50_000)
    s1 = ErrorStats(max_samples=5_000).add(x)
    s2 = ErrorStats(max_samples=5_000).add(x)
    np.testing.assert_array_equal(s1.sample(), s2.sample())  # deterministic
    assert set(s1.sample().tolist()) <= set(x.tolist())
    assert s1.to_dict()["p90"] == pytest.approx(np.quantile(x, 0.9), rel=0.05)
    assert s1.mean == pytest.approx(np.mean(x), rel=1e-12)  # moments stay exact


def test_error_stats_edge_cases():
    s = ErrorStats()
    d = s.to_dict()
    assert d["count"] == 0 and d["mean"] is None and d["p99"] is None
    json.dumps(d)
    s.add([1.0, np.nan, np.inf, 3.0]).add([])
    assert s.count == 2 and s.n_nonfinite == 2 and s.mean == 2.0 and s.std == 1.0
    s.merge(ErrorStats())
    assert s.count == 2
    t = pickle.loads(pickle.dumps(s))
    assert t.to_dict() == s.to_dict()
    with pytest.raises(ValueError):
        ErrorStats(max_samples=0)
    with pytest.raises(TypeError):
        s.merge([1.0])  # type: ignore[arg-type]
