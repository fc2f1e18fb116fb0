"""The blessing rule (components/evaluator/decision.py) against issue 4's wording.

A candidate is blessed only if it is not worse than the baseline on the same
eval rows beyond the tolerance: ROC-AUC with labels; without labels the
false-alarm rate at each model's own threshold. The reasons say why, with
the numbers.
"""
import numpy as np
import pytest

from components.evaluator import decision
from components.evaluator.error_pass import ModelSummary


def _cand(**kw):
    out = {"eval_rows": 100, "nonfinite_errors": 0}
    out.update(kw)
    return out


def test_no_baseline_is_blessed_and_says_so():
    blessed, reasons = decision.decide(_cand(roc_auc=0.8), None, True, None, 0.01, False)
    assert blessed and reasons == ["no baseline: blessed because the model is usable"]


@pytest.mark.parametrize("auc, expected", [(0.905, True), (0.89, True), (0.8899, False)])
def test_labeled_rule_is_roc_auc_within_tolerance(auc, expected):
    blessed, reasons = decision.decide(_cand(roc_auc=auc, false_alarm_rate=0.5),
                                       {"roc_auc": 0.9, "false_alarm_rate": 0.0},
                                       True, None, 0.01, False)
    assert blessed is expected
    assert len(reasons) == 1 and "ROC-AUC" in reasons[0] and "0.9000" in reasons[0]
    assert ("not worse" in reasons[0]) is expected
    assert "false-alarm" not in reasons[0]  # labels: only ROC-AUC counts


@pytest.mark.parametrize("far, expected", [(0.02, True), (0.06, True), (0.0601, False)])
def test_unlabeled_rule_is_false_alarm_rate_within_tolerance(far, expected):
    blessed, reasons = decision.decide(_cand(false_alarm_rate=far, flagged_rate=far),
                                       {"false_alarm_rate": 0.05}, False, None, 0.01, False)
    assert blessed is expected
    assert "false-alarm rate" in reasons[0] and "0.0500" in reasons[0]


def test_labels_with_one_class_fall_back_to_false_alarm_rate():
    blessed, reasons = decision.decide(_cand(roc_auc=None, false_alarm_rate=0.2),
                                       {"roc_auc": None, "false_alarm_rate": 0.01},
                                       True, None, 0.01, False)
    assert not blessed and "normal eval rows" in reasons[0]


def test_no_comparable_metric_refuses_and_names_the_override():
    blessed, reasons = decision.decide(_cand(), {"model_uri": "x"}, False, None, 0.01, False)
    assert not blessed
    assert "could not compare" in reasons[0] and "--ignore-baseline" in reasons[0]


def test_ignore_baseline_is_recorded():
    blessed, reasons = decision.decide(_cand(roc_auc=0.1), {"roc_auc": 0.99}, True, None, 0.01,
                                       True)
    assert blessed and reasons == ["baseline ignored (ignore_baseline=true)"]


def test_every_refusal_is_listed():
    blessed, reasons = decision.decide(
        _cand(eval_rows=0, nonfinite_errors=3, roc_auc=0.6), {"roc_auc": 0.9}, True, 0.7, 0.01,
        False)
    assert not blessed and len(reasons) == 4
    assert any("empty" in r for r in reasons) and any("NaN" in r for r in reasons)
    assert any("below min_roc_auc" in r for r in reasons)
    assert any("worse beyond the tolerance" in r for r in reasons)


def test_comparison_record_has_both_values():
    c = decision.compare_with_baseline(_cand(roc_auc=0.95), {"roc_auc": 0.9}, True, 0.01)
    assert (c["metric"], c["candidate"], c["baseline"], c["passed"]) == ("roc_auc", 0.95, 0.9,
                                                                         True)
    assert decision.compare_with_baseline(_cand(), None, True, 0.01) is None


def test_threshold_and_metrics_from_a_summary():
    rng = np.random.default_rng(0)
    s = ModelSummary(max_samples=10_000)
    normal, anomaly = rng.exponential(1.0, 2000), rng.exponential(1.0, 50) + 5
    errors = np.r_[normal, anomaly]
    labels = np.r_[np.zeros(2000, int), np.ones(50, int)]
    s.add(errors, np.tile(errors[:, None], (1, 3)), labels)
    thr = decision.fit_threshold(s, True, "mean_std", {"k": 3})
    assert thr.value == pytest.approx(normal.mean() + 3 * normal.std())
    m = decision.model_metrics(s, True, thr.value)
    assert m["false_alarm_rate"] == pytest.approx(np.mean(normal > thr.value))
    assert m["roc_auc"] > 0.95 and m["tp"] + m["fn"] == 50
    best = decision.fit_threshold(s, True, "best_f1", {})
    assert best.details["f1"] >= decision.model_metrics(s, True, thr.value)["f1"] - 1e-12


# --------------------------------------------------------------------------- auto threshold
def test_auto_uses_best_f1_with_enough_labelled_anomalies():
    from components.evaluator import thresholds

    rng = np.random.default_rng(2)
    errors = np.r_[rng.normal(0, 1, 2000), rng.normal(4, 1, 40)]
    labels = np.r_[np.zeros(2000), np.ones(40)]
    auto = thresholds.compute_threshold("auto", errors, {}, labels=labels)
    best = thresholds.compute_threshold("best_f1", errors, {}, labels=labels)
    assert auto.value == best.value and auto.details["chosen"] == "best_f1"
    assert auto.params == {"k": 3.0, "min_anomalies": 5, "mad_k": 3.0}


@pytest.mark.parametrize("n_anomalies", [4, 0])
def test_auto_with_few_labelled_anomalies_is_mean_std_of_normal_rows(n_anomalies):
    from components.evaluator import thresholds

    rng = np.random.default_rng(3)
    normal = rng.exponential(1.0, 3000)
    errors = np.r_[normal, rng.normal(6, 1, n_anomalies)]
    labels = np.r_[np.zeros(3000), np.ones(n_anomalies)]
    auto = thresholds.compute_threshold("auto", errors, {"k": 2.5}, labels=labels)
    assert auto.value == pytest.approx(normal.mean() + 2.5 * normal.std())
    assert auto.details["chosen"] == "mean_std"
    assert f"only {n_anomalies} anomalies" in auto.details["why"]


def test_auto_without_labels_is_median_plus_mad_and_flags_the_contamination():
    from components.evaluator import thresholds

    rng = np.random.default_rng(3)
    # 5 % anomalies among the rows, far out: they inflate mean + 3 std, not the median/MAD.
    normal, anomalies = rng.exponential(1.0, 3000), rng.normal(12, 2, 150)
    errors = np.r_[normal, anomalies]
    auto = thresholds.compute_threshold("auto", errors, {}, labels=None)
    med = np.median(errors)
    assert auto.value == pytest.approx(med + 3.0 * 1.4826 * np.median(np.abs(errors - med)))
    assert auto.details["chosen"] == "mad" and "no labels" in auto.details["why"]
    # The anomalies move it far less than they move mean + 3 std (the seed rule).
    clean_auto = thresholds.compute_threshold("auto", normal, {}, labels=None).value
    clean_seed = thresholds.compute_threshold("mean_std", normal, {"k": 3.0}).value
    seed = thresholds.compute_threshold("mean_std", errors, {"k": 3.0}).value
    assert abs(auto.value - clean_auto) < 0.1 * abs(seed - clean_seed)
    assert (errors[3000:] > auto.value).mean() > 0.95  # the anomalies are flagged
    assert (normal > auto.value).mean() < 0.06  # at a modest false-alarm rate
    custom = thresholds.compute_threshold("auto", errors, {"mad_k": 5.0}, labels=None)
    assert custom.value > auto.value


def test_auto_through_the_evaluator_summary_and_fitted_on():
    rng = np.random.default_rng(4)
    s = ModelSummary(max_samples=10_000)
    normal, anomaly = rng.exponential(1.0, 1000), rng.exponential(1.0, 30) + 4
    errors = np.r_[normal, anomaly]
    s.add(errors, np.tile(errors[:, None], (1, 2)), np.r_[np.zeros(1000, int), np.ones(30, int)])
    thr = decision.fit_threshold(s, True, "auto", {})
    assert thr.details["chosen"] == "best_f1"
    assert "labels" in decision.fitted_on(thr, True)
    unl = ModelSummary(max_samples=10_000)
    unl.add(normal, np.tile(normal[:, None], (1, 2)), None)
    thr = decision.fit_threshold(unl, False, "auto", {})
    med = np.median(normal)
    assert thr.value == pytest.approx(med + 3 * 1.4826 * np.median(np.abs(normal - med)))
    assert decision.fitted_on(thr, False) == "eval split, all rows"
    assert decision.fitted_on(decision.fit_threshold(s, True, "mean_std", {}), True) == \
        "eval split, normal rows (label 0)"


@pytest.mark.parametrize("params, message", [({"k": -1}, "'k' must be >= 0"),
                                             ({"mad_k": -1}, "'mad_k' must be >= 0"),
                                             ({"q": 0.9}, "unknown parameter")])
def test_auto_params_are_validated(params, message):
    from components.evaluator import thresholds

    with pytest.raises(ValueError, match=message):
        thresholds.validate_params("auto", params)
