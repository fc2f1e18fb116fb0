"""Tests for components/evaluator/thresholds.py (pure numpy; no TensorFlow)."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from sklearn import metrics as skm

from components.evaluator.thresholds import (
    DEFAULT_PARAMS,
    METHODS,
    ErrorStats,
    ThresholdResult,
    classification_metrics,
    compute_threshold,
    pr_curve_points,
    roc_curve_points,
)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def _tied_scores(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Random labelled errors with many ties; positives score higher on average."""
    labels = rng.random(n) < 0.3
    errors = np.round(rng.normal(size=n) + 0.8 * labels, 1)
    return errors, labels.astype(int)


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


def test_evt_result_is_json_serialisable(rng):
    res = compute_threshold("evt", rng.exponential(size=5000))
    json.dumps(res.to_dict())


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


# --------------------------------------------------------------------------- #
# Metrics
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("seed", range(5))
def test_classification_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    e, y = _tied_scores(rng, 700)
    thr = float(np.quantile(e, 0.7))
    m = classification_metrics(e, y, thr)
    pred = (e > thr).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1]).ravel()
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (tp, fp, tn, fn)
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred), abs=1e-12)
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred), abs=1e-12)
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred), abs=1e-12)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, e), abs=1e-12)
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y, e), abs=1e-12)
    assert m["false_alarm_rate"] == pytest.approx(fp / (fp + tn))
    assert m["n"] == 700 and m["n_anomalies"] == int(y.sum())
    json.dumps(m)
    assert all(type(v) in (int, float) for v in m.values())


def test_metrics_single_class_and_no_predictions():
    e = np.array([0.1, 0.2, 0.3, 0.3])
    m = classification_metrics(e, np.zeros(4), threshold=0.25)
    assert m["roc_auc"] is None and m["pr_auc"] is None
    assert m["false_alarm_rate"] == 0.5 and m["recall"] == 0.0
    m = classification_metrics(e, np.ones(4, dtype=bool), threshold=0.25)
    assert m["roc_auc"] is None and m["false_alarm_rate"] is None
    m = classification_metrics(e, np.array([0, 1, 0, 1]), threshold=10.0)
    assert m["precision"] == 0.0 and m["recall"] == 0.0 and m["f1"] == 0.0
    assert m["tp"] == 0 and m["fn"] == 2
    json.dumps(m)


def test_metrics_predict_strictly_greater():
    m = classification_metrics(np.array([1.0, 2.0]), np.array([0, 1]), threshold=2.0)
    assert m["tp"] == 0 and m["fn"] == 1


def test_metrics_input_validation():
    with pytest.raises(ValueError, match="element"):
        classification_metrics(np.ones(3), np.ones(2), 0.5)
    with pytest.raises(ValueError, match="binary"):
        classification_metrics(np.ones(3), np.array([0, 1, 2]), 0.5)
    with pytest.raises(ValueError, match="threshold"):
        classification_metrics(np.ones(3), np.array([0, 1, 1]), float("nan"))


def test_curve_points_match_sklearn(rng):
    e, y = _tied_scores(rng, 300)
    roc = roc_curve_points(e, y, max_points=10_000)
    fpr, tpr, thr = skm.roc_curve(y, e, drop_intermediate=False)
    np.testing.assert_allclose(roc["fpr"], fpr)
    np.testing.assert_allclose(roc["tpr"], tpr)
    assert roc["thresholds"][0] is None
    np.testing.assert_allclose(roc["thresholds"][1:], thr[1:])

    pr = pr_curve_points(e, y, max_points=10_000)
    prec, rec, pthr = skm.precision_recall_curve(y, e)
    # sklearn: increasing thresholds then the (recall=0, precision=1) end point
    np.testing.assert_allclose(pr["precision"], prec[::-1])
    np.testing.assert_allclose(pr["recall"], rec[::-1])
    np.testing.assert_allclose(pr["thresholds"][1:], pthr[::-1])
    json.dumps(roc), json.dumps(pr)


def test_curve_points_downsampled_and_single_class(rng):
    e = rng.normal(size=5000)
    y = (rng.random(5000) < 0.1).astype(int)
    roc = roc_curve_points(e, y, max_points=50)
    pr = pr_curve_points(e, y, max_points=50)
    for curve in (roc, pr):
        assert 2 <= len(curve["thresholds"]) <= 50
        assert len({len(v) for v in curve.values()}) == 1
    assert (roc["fpr"][0], roc["tpr"][0], roc["fpr"][-1], roc["tpr"][-1]) == (0.0, 0.0, 1.0, 1.0)
    assert np.all(np.diff(roc["fpr"]) >= 0)
    assert (pr["recall"][0], pr["precision"][0], pr["recall"][-1]) == (0.0, 1.0, 1.0)
    assert roc_curve_points(e, np.zeros(5000)) == {"fpr": [], "tpr": [], "thresholds": []}
    assert pr_curve_points(e, np.ones(5000)) == {"precision": [], "recall": [], "thresholds": []}
    with pytest.raises(ValueError, match="max_points"):
        roc_curve_points(e, y, max_points=1)


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


def test_validate_params_rejects_unknown_method_and_typos():
    from components.evaluator.thresholds import validate_params

    assert validate_params("mean_std", {}) == {"k": 3.0}
    assert validate_params("quantile", {"q": 0.9})["q"] == 0.9
    with pytest.raises(ValueError, match="valid: .*mean_std"):
        validate_params("meanstd", {})
    with pytest.raises(ValueError, match="unknown parameter"):
        validate_params("mean_std", {"kk": 2})


def test_public_roc_auc_equals_sklearn_and_needs_both_classes():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(11)
    errors = np.r_[rng.exponential(1, 300), rng.exponential(3, 30)]
    labels = np.r_[np.zeros(300, int), np.ones(30, int)]
    from components.evaluator import thresholds

    assert thresholds.roc_auc(errors, labels) == pytest.approx(roc_auc_score(labels, errors))
    with pytest.raises(ValueError, match="both classes"):
        thresholds.roc_auc(errors, np.zeros(330, int))
