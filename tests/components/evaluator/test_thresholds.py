"""components/evaluator/thresholds.py: the threshold methods (pure numpy; no TensorFlow)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from components.evaluator.metrics import classification_metrics
from components.evaluator.thresholds import (DEFAULT_PARAMS, METHODS, ThresholdResult,
                                             compute_threshold)


# --------------------------------------------------------------------------- #
# Registry / result object
# --------------------------------------------------------------------------- #
def test_registry_and_defaults_agree():
    assert set(METHODS) == set(DEFAULT_PARAMS) == {
        "mean_std", "quantile", "contamination", "mad", "best_f1", "evt", "auto"}


def test_result_is_frozen_and_reports_effective_params(rng):
    res = compute_threshold("mad", rng.normal(size=100), {"k": 2})
    assert isinstance(res, ThresholdResult)
    assert res.method == "mad"
    assert res.params == {"k": 2.0, "scale": 1.4826}
    with pytest.raises(Exception):
        res.value = 1.0  # type: ignore[misc]
    json.dumps(res.to_dict())


# --------------------------------------------------------------------------- #
# Simple methods
# --------------------------------------------------------------------------- #
def test_mean_std_matches_reference_recipe(rng):
    e = rng.normal(loc=2.0, scale=0.5, size=5000)
    assert compute_threshold("mean_std", e, {}).value == np.mean(e) + 3 * np.std(e)
    assert compute_threshold("mean_std", e, None).params == {"k": 3.0}
    assert compute_threshold("mean_std", e, {"k": 1.5}).value == pytest.approx(
        np.mean(e) + 1.5 * np.std(e), rel=1e-12)
    assert compute_threshold("mean_std", e, {"k": 0}).value == pytest.approx(np.mean(e), rel=1e-12)


@pytest.mark.parametrize("q", [0.5, 0.9, 0.99, 0.999])
def test_quantile_matches_numpy(rng, q):
    e = rng.exponential(size=3001)
    assert compute_threshold("quantile", e, {"q": q}).value == np.quantile(e, q)
    assert compute_threshold("quantile", e).value == np.quantile(e, 0.99)


def test_contamination_flags_expected_fraction(rng):
    e = rng.gamma(2.0, size=20000)
    res = compute_threshold("contamination", e, {"c": 0.05})
    assert res.value == np.quantile(e, 0.95)
    assert np.mean(e > res.value) == pytest.approx(0.05, abs=1e-3)
    fresh = rng.gamma(2.0, size=200_000)
    assert np.mean(fresh > res.value) == pytest.approx(0.05, abs=5e-3)


def test_mad_is_consistent_with_std_and_robust(rng):
    e = rng.normal(loc=1.0, scale=0.2, size=50_000)
    mad = compute_threshold("mad", e).value
    assert mad == pytest.approx(np.mean(e) + 3 * np.std(e), rel=0.02)
    med = np.median(e)
    assert mad == pytest.approx(med + 3 * 1.4826 * np.median(np.abs(e - med)), rel=1e-12)

    contaminated = e.copy()
    contaminated[: len(e) // 20] = 1e3  # 5 % huge outliers
    mad_c = compute_threshold("mad", contaminated).value
    ms_c = compute_threshold("mean_std", contaminated).value
    clean = 1.0 + 3 * 0.2
    assert abs(mad_c - clean) < 0.1 * clean  # barely moves
    assert ms_c > 100 * clean  # blown up by the outliers


# --------------------------------------------------------------------------- #
# best_f1
# --------------------------------------------------------------------------- #
def _f1_at(errors: np.ndarray, labels: np.ndarray, thr: float) -> float:
    pred = errors > thr
    tp = np.sum(pred & labels)
    fp = np.sum(pred & ~labels)
    fn = np.sum(~pred & labels)
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def test_best_f1_separable_data(rng):
    normal = rng.uniform(0.0, 1.0, size=500)
    anomalous = rng.uniform(2.0, 3.0, size=20)
    e = np.concatenate([normal, anomalous])
    y = np.r_[np.zeros(500), np.ones(20)]
    res = compute_threshold("best_f1", e, {}, labels=y)
    assert normal.max() < res.value < anomalous.min()
    assert res.value == pytest.approx((normal.max() + anomalous.min()) / 2)
    assert res.details["f1"] == 1.0
    assert res.details["precision"] == 1.0 and res.details["recall"] == 1.0
    assert classification_metrics(e, y, res.value)["f1"] == 1.0


@pytest.mark.parametrize("seed", range(25))
def test_best_f1_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40))
    e = np.round(rng.normal(size=n), 1)  # ties
    y = rng.random(n) < 0.4
    y[0], y[1] = True, False  # both classes present
    res = compute_threshold("best_f1", e, labels=y.astype(int))

    uniq = np.unique(e)
    candidates = np.r_[uniq[0] - 1.0, uniq]  # every distinct prediction set
    brute = max(_f1_at(e, y, t) for t in candidates)
    assert res.details["f1"] == pytest.approx(brute, abs=1e-12)
    assert _f1_at(e, y, res.value) == pytest.approx(brute, abs=1e-12)
    assert classification_metrics(e, y, res.value)["f1"] == pytest.approx(brute, abs=1e-12)
    # the threshold lies strictly between distinct errors (or below the minimum)
    assert not np.any(e == res.value)


def test_best_f1_picks_below_min_when_everything_should_be_flagged():
    e = np.array([1.0, 2.0, 3.0])
    y = np.array([1, 1, 0])  # flag all: F1=0.8; flag >=2: F1=0.5; flag >=3: 0
    res = compute_threshold("best_f1", e, labels=y)
    assert res.value < 1.0
    assert res.details["f1"] == pytest.approx(0.8)


def test_best_f1_is_fast_on_large_input(rng):
    e = rng.normal(size=300_000)
    y = (e + rng.normal(size=e.size)) > 2.0
    res = compute_threshold("best_f1", e, labels=y)  # O(n^2) would never finish
    assert 0.0 < res.details["f1"] <= 1.0


@pytest.mark.parametrize(
    "labels, match",
    [
        (None, "labels are required"),
        (np.zeros(10), "both classes"),
        (np.ones(10), "both classes"),
        (np.arange(10), "binary"),
        (np.r_[0, 1], "element"),
    ],
)
def test_best_f1_label_errors(labels, match):
    with pytest.raises(ValueError, match=match):
        compute_threshold("best_f1", np.arange(10.0), labels=labels)


# --------------------------------------------------------------------------- #
# EVT
# --------------------------------------------------------------------------- #
def test_evt_exponential_tail(rng):
    train = rng.exponential(size=100_000)
    res = compute_threshold("evt", train, {"risk": 1e-3})
    d = res.details
    assert not d["fallback"]
    assert d["initial_threshold"] == np.quantile(train, 0.98)
    assert d["n_excess"] == pytest.approx(2000, abs=2)
    assert abs(d["shape"]) < 0.1  # exponential tail => shape ~ 0
    assert d["scale"] == pytest.approx(1.0, rel=0.1)
    assert res.value == pytest.approx(-np.log(1e-3), rel=0.1)
    fresh = rng.exponential(size=1_000_000)
    assert 0.6e-3 < np.mean(fresh > res.value) < 1.6e-3


def test_evt_pareto_tail_extrapolates_beyond_data(rng):
    a = 3.0  # Lomax(a): excesses over any u are exactly GPD with shape 1/a
    train = rng.pareto(a, size=50_000)
    risk = 1e-4  # only ~5 training points beyond the true quantile
    res = compute_threshold("evt", train, {"risk": risk})
    assert not res.details["fallback"]
    assert res.details["shape"] == pytest.approx(1 / a, abs=0.15)
    true_q = (risk ** (-1 / a)) - 1.0
    assert res.value == pytest.approx(true_q, rel=0.3)
    fresh = rng.pareto(a, size=2_000_000)
    assert risk / 3 < np.mean(fresh > res.value) < 3 * risk


def test_evt_fallback_with_few_excesses(rng):
    e = rng.exponential(size=200)  # 0.98 quantile leaves ~4 excesses
    res = compute_threshold("evt", e, {"risk": 0.01})
    assert res.details["fallback"] is True
    assert res.details["n_excess"] < 10
    assert res.details["shape"] is None and res.details["scale"] is None
    assert "min_excesses" in res.details["reason"]
    assert res.value == np.quantile(e, 0.99)


def test_evt_fallback_when_risk_not_in_tail(rng):
    e = rng.exponential(size=10_000)
    res = compute_threshold("evt", e, {"risk": 0.05, "initial_quantile": 0.98})
    assert res.details["fallback"] is True
    assert res.value == np.quantile(e, 0.95)


# --------------------------------------------------------------------------- #
# Validation
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("method", sorted(METHODS))
def test_empty_and_non_finite_errors_rejected(method):
    labels = np.array([0, 1])
    with pytest.raises(ValueError, match=f"{method}.*empty"):
        compute_threshold(method, np.array([]), labels=np.array([]))
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(ValueError, match=f"{method}.*non-finite"):
            compute_threshold(method, np.array([1.0, bad]), labels=labels)


@pytest.mark.parametrize(
    "method, params, match",
    [
        ("mean_std", {"k": -1}, "'k' must be >= 0"),
        ("mad", {"k": -0.1}, "'k' must be >= 0"),
        ("mad", {"scale": 0}, "'scale' must be > 0"),
        ("quantile", {"q": 0}, "open interval"),
        ("quantile", {"q": 1}, "open interval"),
        ("quantile", {"q": 1.5}, "open interval"),
        ("contamination", {"c": 0.0}, "open interval"),
        ("contamination", {"c": 1.0}, "open interval"),
        ("evt", {"risk": 0}, "open interval"),
        ("evt", {"initial_quantile": 1.0}, "open interval"),
        ("evt", {"min_excesses": 0}, "min_excesses"),
        ("evt", {"min_excesses": 2.5}, "integer"),
        ("mean_std", {"k": "three"}, "must be a number"),
        ("mean_std", {"k": None}, "must be a number"),
        ("mean_std", {"k": True}, "must be a number"),
        ("mean_std", {"k": float("nan")}, "finite"),
        ("quantile", {"k": 3}, r"unknown parameter.*accepted parameters: q"),
        ("mean_std", {"kk": 3}, r"unknown parameter\(s\) \['kk'\]"),
        ("best_f1", {"q": 0.5}, r"accepted parameters: \(none\)"),
    ],
)
def test_invalid_params_rejected(rng, method, params, match):
    e = rng.exponential(size=100)
    y = (np.arange(100) % 2).astype(int)
    with pytest.raises(ValueError, match=match):
        compute_threshold(method, e, params, labels=y)


def test_unknown_method_lists_valid_names():
    with pytest.raises(ValueError, match="valid methods: auto, best_f1, contamination, evt, mad, mean_std, quantile"):
        compute_threshold("meanstd", np.ones(3), {})


def test_numeric_strings_are_coerced(rng):
    e = rng.normal(size=100)
    assert compute_threshold("quantile", e, {"q": "0.9"}).value == np.quantile(e, 0.9)


def test_non_numeric_errors_rejected():
    with pytest.raises(ValueError, match="quantile: errors must be numeric"):
        compute_threshold("quantile", ["a", "b"], {})


def test_validate_params_rejects_unknown_method_and_typos():
    from components.evaluator.thresholds import validate_params

    assert validate_params("mean_std", {}) == {"k": 3.0}
    assert validate_params("quantile", {"q": 0.9})["q"] == 0.9
    with pytest.raises(ValueError, match="valid: .*mean_std"):
        validate_params("meanstd", {})
    with pytest.raises(ValueError, match="unknown parameter"):
        validate_params("mean_std", {"kk": 2})
