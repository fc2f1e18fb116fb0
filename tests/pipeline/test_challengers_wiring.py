"""The challengers section travels config -> evaluator config -> summary."""
import json

import numpy as np

from components.evaluator import challengers
from components.evaluator.executor import parse_challengers
from components.evaluator.settings import ChallengerSettings
from pipeline import dag, summary
from pipeline.config import build_config


def test_the_config_composes_the_section():
    cfg = build_config(overrides={"challengers": {"bless_margin": 0.01, "knn_k": 7}})
    got = parse_challengers(json.dumps(dag.component_configs(cfg)["evaluator"]))
    assert got.bless_margin == 0.01 and got.knn_k == 7 and got == cfg.challengers
    assert parse_challengers("{}") == ChallengerSettings() == build_config().challengers


def test_the_summary_names_each_challenger_the_best_and_the_margin():
    rng = np.random.default_rng(0)
    tr = {"a": rng.normal(size=300)}
    ev = {"a": np.r_[rng.normal(size=100), rng.normal(6, 1, 10)]}
    y = np.r_[np.zeros(100), np.ones(10)]
    out = challengers.compare(challengers.score_challengers(tr, {}, ev, {}, y,
                                                            ChallengerSettings()), 0.5)
    s = summary._challengers(out)
    assert set(s) == {"max_abs_z", "mahalanobis", "knn", "iforest", "best",
                      "autoencoder_roc_auc", "margin_vs_best"}
    assert s["autoencoder_roc_auc"] == 0.5 and s["margin_vs_best"] < 0
    assert summary._challengers(None) is None
