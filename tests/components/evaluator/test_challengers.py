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


def test_margin_verdict_and_compare():
    tr, ctr, ev, cev, y = _data()
    out = challengers.score_challengers(tr, ctr, ev, cev, y, ChallengerSettings())
    best = out[out["best"]]["roc_auc"]
    cmp = challengers.compare(out, best - 0.01)
    assert cmp["autoencoder_roc_auc"] == best - 0.01
    assert cmp["margin_vs_best"] == round(-0.01, 6)
    assert challengers.margin_verdict(best - 0.01, cmp, None) is None  # off by default
    assert "does not beat the best challenger" in challengers.margin_verdict(best - 0.01, cmp,
                                                                             0.0)
    fake = {"best": "knn", "knn": {"roc_auc": 0.9}}
    assert challengers.margin_verdict(0.92, fake, 0.01) is None
    assert challengers.margin_verdict(0.905, fake, 0.01) is not None


def test_read_split_keeps_normal_rows_and_empty_cells(tmp_path):
    import pandas as pd

    df = pd.DataFrame({"a": [1.0, np.nan, 3.0, 4.0], "c": [b"x", b"", b"y", b"x"],
                       "label": [0, 0, 1, 0]})
    df.to_parquet(tmp_path / "data.parquet")
    num, cat, labels = challengers.read_split(str(tmp_path), ["a"], ["c"], "label", 10)
    assert np.isnan(num["a"][1]) and list(labels) == [0, 0, 1, 0]
    assert list(cat["c"]) == [b"x", b"", b"y", b"x"]
    num, cat, labels = challengers.read_split(str(tmp_path), ["a"], ["c"], "label", 10,
                                              normal_only=True)
    assert labels is None and list(np.nan_to_num(num["a"])) == [1.0, 0.0, 4.0]
    num, _, _ = challengers.read_split(str(tmp_path), ["a"], ["c"], None, 2)
    assert len(num["a"]) == 2



def test_the_report_section_says_who_wins():
    from components.evaluator import report

    tr, ctr, ev, cev, y = _data()
    out = challengers.compare(challengers.score_challengers(tr, ctr, ev, cev, y,
                                                            ChallengerSettings()), 0.5)
    html = report._challengers_section(out)
    assert "does not beat the best challenger" in html and "<td>iforest</td>" in html
    assert "Not scored" in report._challengers_section(None)
