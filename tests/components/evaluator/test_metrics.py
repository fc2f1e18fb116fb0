"""components/evaluator/metrics.py: metrics and curves against scikit-learn (pure numpy)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from components.evaluator import metrics
from components.evaluator.metrics import (classification_metrics, pr_curve_points,
                                          roc_curve_points)
from tests.helpers import tied_scores


# --------------------------------------------------------------------------- #
# Metrics
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("seed", range(5))
def test_classification_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    e, y = tied_scores(rng, 700)
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
    e, y = tied_scores(rng, 300)
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


def test_public_roc_auc_equals_sklearn_and_needs_both_classes():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(11)
    errors = np.r_[rng.exponential(1, 300), rng.exponential(3, 30)]
    labels = np.r_[np.zeros(300, int), np.ones(30, int)]
    assert metrics.roc_auc(errors, labels) == pytest.approx(roc_auc_score(labels, errors))
    with pytest.raises(ValueError, match="both classes"):
        metrics.roc_auc(errors, np.zeros(330, int))
