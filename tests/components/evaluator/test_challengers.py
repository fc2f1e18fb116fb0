import numpy as np

from components.evaluator import challengers
from components.evaluator.settings import ChallengerSettings


def _data(seed=0):
    rng = np.random.default_rng(seed)
    tr = {"a": rng.normal(size=500), "b": rng.normal(size=500)}
    ev = {"a": np.r_[rng.normal(size=200), rng.normal(6, 1, 20)],
          "b": np.r_[rng.normal(size=200), rng.normal(6, 1, 20)]}
    ev["a"][0] = np.nan
    cat_tr = {"c": np.array(["x", "y"] * 250, object)}
    cat_ev = {"c": np.array(["x"] * 219 + ["new"], object)}
    return tr, cat_tr, ev, cat_ev, np.r_[np.zeros(200), np.ones(20)]


def test_every_challenger_finds_planted_anomalies():
    tr, ctr, ev, cev, y = _data()
    out = challengers.score_challengers(tr, ctr, ev, cev, y, ChallengerSettings())
    for name in ("max_abs_z", "mahalanobis", "knn", "iforest"):
        assert out[name]["roc_auc"] > 0.9, (name, out[name])
    assert out["best"] in ("max_abs_z", "mahalanobis", "knn", "iforest")


def test_without_labels_no_auc():
    tr, ctr, ev, cev, _ = _data()
    out = challengers.score_challengers(tr, ctr, ev, cev, None, ChallengerSettings())
    assert "roc_auc" not in out["knn"] and "note" in out and out["best"] is None


def test_bless_margin_rule_and_problems():
    out = {"best": "knn", "knn": {"roc_auc": 0.9}}
    assert challengers.margin_verdict(0.95, out, 0.02) is None
    assert "knn" in challengers.margin_verdict(0.91, out, 0.02)
    assert challengers.margin_verdict(0.5, out, None) is None
    assert ChallengerSettings(knn_k=0).problems()
    assert not ChallengerSettings().problems()
