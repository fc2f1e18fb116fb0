"""components.report: report.html holds every part, self-contained, with real images."""
import base64
import html
import json
import os
import re

import numpy as np
import pytest

from components.evaluator import report
from components.evaluator import decision
from components.evaluator.error_pass import ModelSummary

FEATURES = ["a", "b", "c", "d"]


def _summary(seed, shift=5.0, labeled=True):
    rng = np.random.default_rng(seed)
    s = ModelSummary(max_samples=100_000)
    fe_n = rng.exponential(0.5, size=(900, len(FEATURES)))
    fe_a = rng.exponential(0.5, size=(40, len(FEATURES)))
    fe_a[:, 2] += shift
    fe = np.vstack([fe_n, fe_a])
    labels = np.r_[np.zeros(900, int), np.ones(40, int)] if labeled else None
    s.add(fe.mean(1), fe, labels)
    return s


def _stats_file(root, split, rows):
    from tensorflow_metadata.proto.v0 import statistics_pb2

    msg = statistics_pb2.DatasetFeatureStatisticsList()
    ds = msg.datasets.add(num_examples=rows)
    for i, name in enumerate(FEATURES + ["label"]):
        f = ds.features.add()
        f.path.step.append(name)
        f.num_stats.mean = float(i)
        f.num_stats.std_dev = 1.0 + i
        f.num_stats.max = 10.0 + i
        f.num_stats.common_stats.num_non_missing = rows
    d = os.path.join(root, f"Split-{split}")
    os.makedirs(d)
    with open(os.path.join(d, "FeatureStats.pb"), "wb") as f:
        f.write(msg.SerializeToString())


def _evaluation(summaries, labeled=True):
    thr = decision.fit_threshold(summaries["candidate"], labeled, "mean_std", {"k": 3})
    cand = decision.model_metrics(summaries["candidate"], labeled, thr.value)
    base = None
    if "baseline" in summaries:
        b = decision.fit_threshold(summaries["baseline"], labeled, "mean_std", {"k": 3})
        base = decision.model_metrics(summaries["baseline"], labeled, b.value)
        base.update(threshold=b.value, model_uri="/runs/Trainer/model/3")
    blessed, reasons = decision.decide(cand, base, labeled, None, 0.01, False)
    return {"blessed": blessed, "reasons": reasons, "labeled": labeled, "metrics": cand,
            "baseline": base, "model_uri": "/runs/Trainer/model/9",
            "threshold": {"threshold": thr.value, "method": "mean_std", "params": {"k": 3.0},
                          "fitted_on": "eval split, normal rows (label 0)"},
            "comparison": decision.compare_with_baseline(cand, base, labeled, 0.01)}


def _model_dir(tmp_path):
    d = tmp_path / "model"
    (d / "assets").mkdir(parents=True)
    (d / "assets" / "training_summary.json").write_text(json.dumps({
        "history": {"loss": [1.0, 0.6, 0.5, 0.45], "val_loss": [0.9, 0.7, 0.6, 0.62]},
        "best_epoch": 3, "epochs_run": 4, "train_rows": 700, "validation_rows": 175,
        "layer_sizes": [3, 4]}))
    return str(d)


def _images(text):
    srcs = re.findall(r'<img src="data:image/png;base64,([^"]+)"', text)
    for s in srcs:
        assert base64.b64decode(s)[:8] == b"\x89PNG\r\n\x1a\n"
    return srcs


def _section(text, sid):
    m = re.search(rf"<section id='{sid}'>(.*?)</section>", text, re.S)
    assert m, f"section {sid} missing"
    return m.group(1)


def test_labeled_report_with_baseline_has_every_part(tmp_path):
    summaries = {"candidate": _summary(0), "baseline": _summary(1, shift=1.0)}
    evaluation = _evaluation(summaries)
    stats = tmp_path / "stats"
    _stats_file(str(stats), "train", 700)
    _stats_file(str(stats), "eval", 240)
    out = tmp_path / "eval"
    out.mkdir()
    path = report.write_evaluation_report(str(out), evaluation, summaries, _model_dir(tmp_path),
                                          str(stats), FEATURES)
    text = open(path).read()
    assert path == str(out / "report.html")
    # Self-contained: no external resource is referenced.
    assert not re.search(r'(src|href)="(http|//|file:)', text)
    assert len(_images(text)) == 4  # loss, histogram, ROC+PR (one figure), features
    for sid in report.SECTIONS:
        _section(text, sid)
    assert "val" in _section(text, "training") and "best epoch" in _section(text, "training")
    assert _images(_section(text, "training"))
    errors = _section(text, "errors")
    assert _images(errors) and "anomaly" in errors and "normal" in errors
    assert _images(_section(text, "curves")) and "baseline" in _section(text, "curves")
    m = evaluation["metrics"]
    conf = _section(text, "confusion")
    for k in ("tp", "fn", "fp", "tn"):
        assert f"<td>{m[k]:,}</td>" in conf
    feats = _section(text, "features")
    assert all(f"<td>{f}</td>" in feats for f in FEATURES)
    base = _section(text, "baseline")
    assert "/runs/Trainer/model/3" in base and "candidate − baseline" in base
    assert "ROC-AUC" in base  # the rule and its verdict
    data = _section(text, "data")
    assert "train split: 700 rows" in data and "eval split: 240 rows" in data
    assert "<td>label</td>" in data
    # errors.npz and curves persisted for other tools.
    npz = np.load(out / "errors.npz")
    assert set(npz.files) == {"normal", "anomaly"} and npz["anomaly"].size == 40
    assert evaluation["curves"]["candidate"]["roc"]["fpr"][0] == 0.0
    assert "baseline" in evaluation["curves"]


def test_unlabeled_report_without_baseline_says_what_is_missing(tmp_path):
    summaries = {"candidate": _summary(0, labeled=False)}
    evaluation = _evaluation(summaries, labeled=False)
    out = tmp_path / "eval"
    out.mkdir()
    path = report.write_evaluation_report(str(out), evaluation, summaries, _model_dir(tmp_path),
                                          None, FEATURES)
    text = open(path).read()
    assert len(_images(text)) == 3  # loss, histogram, features
    assert "Needs labels" in _section(text, "curves")
    assert "Needs labels" in _section(text, "confusion")
    assert "No baseline" in _section(text, "baseline")
    assert "No statistics" in _section(text, "data")
    assert set(np.load(out / "errors.npz").files) == {"unlabeled"}
    assert "curves" not in evaluation


def test_errors_are_downsampled(tmp_path):
    kept = report.save_errors(str(tmp_path / "e.npz"),
                              {"normal": np.arange(report.MAX_SAVED_ERRORS * 3, dtype=float)})
    assert kept["normal"].size == report.MAX_SAVED_ERRORS
    assert np.load(tmp_path / "e.npz")["normal"].size == report.MAX_SAVED_ERRORS


@pytest.mark.parametrize("values", [np.zeros(50), np.linspace(0.5, 0.6, 50),
                                    np.logspace(-6, 3, 50)])
def test_histogram_handles_degenerate_and_wide_ranges(values):
    assert report.plot_histogram({"unlabeled": values}, 0.55).startswith("data:image/png;base64,")


def test_auto_threshold_says_which_rule_it_chose(tmp_path):
    summaries = {"candidate": _summary(2)}
    evaluation = _evaluation(summaries)
    thr = decision.fit_threshold(summaries["candidate"], True, "auto", {})
    evaluation["threshold"] = {"threshold": thr.value, "method": "auto", "params": thr.params,
                               "details": thr.details, "fitted_on": decision.fitted_on(thr, True)}
    out = tmp_path / "eval"
    out.mkdir()
    text = open(report.write_evaluation_report(str(out), evaluation, summaries,
                                               _model_dir(tmp_path), None, FEATURES)).read()
    summary = _section(text, "summary")
    assert "<code>auto</code>" in summary
    assert f"chose <code>{thr.details['chosen']}</code>" in summary
    assert html.escape(thr.details["why"]) in summary


def _report_with_training(tmp_path, training):
    summaries = {"candidate": _summary(0)}
    d = tmp_path / "model"
    (d / "assets").mkdir(parents=True)
    (d / "assets" / "training_summary.json").write_text(json.dumps(training))
    out = tmp_path / "eval"
    out.mkdir()
    return open(report.write_evaluation_report(str(out), _evaluation(summaries), summaries,
                                               str(d), None, FEATURES)).read()


def test_model_selection_is_its_own_section_and_the_epoch_cap_a_warning(tmp_path):
    cand = {"epochs": 3, "seconds": 1.5}
    text = _report_with_training(tmp_path, {
        "history": {"loss": [1.0, 0.8, 0.6], "val_loss": [0.9, 0.7, 0.5]},
        "best_epoch": 3, "epochs_run": 3, "train_rows": 40, "validation_rows": 10,
        "layer_sizes": [3, 4], "model": {"epochs": 3},
        "selection": {"chosen": 1, "eval_rows": 300, "eval_anomalies": 20, "why": "highest",
                      "candidates": [
                          {"overrides": {}, "roc_auc": 0.95, "epochs_run": 3, "best_epoch": 3,
                           "best_val_loss": 0.5, **cand},
                          {"overrides": {"input_noise": 0.3}, "roc_auc": 0.97,
                           "epochs_run": 3, "best_epoch": 3, "best_val_loss": 0.5, **cand},
                          {"overrides": {"hidden_units": [64]}, "roc_auc": 0.91,
                           "epochs_run": 2, "best_epoch": 1, "best_val_loss": 0.7, **cand}]}})
    sel = _section(text, "selection")
    rows = re.findall(r"<tr>(.*?)</tr>", sel)[1:]
    assert len(rows) == 3
    assert "as configured" in rows[0] and "input_noise=0.3" in rows[1]
    assert "hidden_units=[64]" in rows[2]
    assert [("kept" in r) for r in rows] == [False, True, False]
    assert "0.9700" in rows[1] and "(the cap)" in rows[1] and "(the cap)" not in rows[2]
    assert "300 labelled eval rows" in sel
    training = _section(text, "training")
    assert "Warning:" in training and "epoch cap (model.epochs=3)" in training
    assert "validation loss still falling" in training


def test_no_warning_before_the_cap_and_one_candidate_says_so(tmp_path):
    text = _report_with_training(tmp_path, {
        "history": {"loss": [1.0, 0.6, 0.5, 0.45], "val_loss": [0.9, 0.7, 0.6, 0.62]},
        "best_epoch": 3, "epochs_run": 4, "train_rows": 700, "validation_rows": 175,
        "layer_sizes": [3, 4], "model": {"epochs": 50},
        "selection": {"candidates": [{"overrides": {}, "roc_auc": None}], "chosen": 0,
                      "why": "no labels: first candidate"}})
    assert "Warning" not in _section(text, "training")
    assert "One candidate trained: no labels: first candidate" in _section(text, "selection")
