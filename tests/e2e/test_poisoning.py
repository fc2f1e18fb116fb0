"""Poisoned training data must not replace a better served model (issue 7, item 4).

Run 1 trains on clean data: normal rows near a 3-d subspace of 8 features,
anomalies from one tight off-subspace cluster (labelled 1). Run 2's new data is
30% that same cluster, labelled 0 (poisoned): the candidate learns to
reconstruct the anomalies. On its own eval split, whose labels are poisoned
too, the candidate can look fine; on the eval rows the served model was
blessed on, it is clearly worse, so it must not be blessed or pushed.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.e2e

D = 8


def _data(n_normal, n_cluster_label1, n_cluster_label0, seed):
    mix = np.random.default_rng(0).normal(size=(3, D))
    off = np.random.default_rng(1).normal(size=D)
    off -= mix.T @ np.linalg.lstsq(mix.T, off, rcond=None)[0]  # orthogonal to normal data
    off *= 4.0 / np.linalg.norm(off)
    rng = np.random.default_rng(seed)

    def normal(n):
        return rng.normal(size=(n, 3)) @ mix + 0.05 * rng.normal(size=(n, D))

    def cluster(n):
        return normal(n) * 0.3 + off + 0.05 * rng.normal(size=(n, D))

    x = np.vstack([normal(n_normal), cluster(n_cluster_label1), cluster(n_cluster_label0)])
    y = np.r_[np.zeros(n_normal, int), np.ones(n_cluster_label1, int),
              np.zeros(n_cluster_label0, int)]
    df = pd.DataFrame(x * 10 + 50, columns=[f"f{i}" for i in range(D)])
    df["label"] = y
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def _run(data, out):
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "run", "--data", str(data), "--label-column",
         "label", "--output", str(out), "--epochs", "40", "--early-stopping-patience", "40"],
        capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_poisoned_span_is_not_blessed_and_the_served_model_stays(tmp_path):
    out = tmp_path / "out"
    clean, poisoned = tmp_path / "clean.csv", tmp_path / "poisoned.csv"
    _data(600, 40, 0, seed=1).to_csv(clean, index=False)
    _data(420, 30, 180, seed=2).to_csv(poisoned, index=False)

    first = _run(clean, out)
    assert first["blessed"] and first["pushed_model"]
    served = sorted(os.listdir(out / "serving_model" / "anomaly_detector"))

    second = _run(poisoned, out)
    report = json.load(open(second["evaluation"]))
    ref_cand = report["metrics"]["reference"]["roc_auc"]
    ref_base = report["baseline"]["reference"]["roc_auc"]
    assert ref_cand < ref_base - 0.01, (ref_cand, ref_base)
    assert second["blessed"] is False
    assert second["pushed_model"] is None
    assert any("baseline's eval rows" in r for r in second["reasons"]), second["reasons"]
    versions = [v for v in os.listdir(out / "serving_model" / "anomaly_detector")
                if not v.startswith(".")]
    assert sorted(versions) == served  # the first model is still the one served
