"""`anomaly-pipeline drift` against a served model: the pipeline runs once, then
new CSVs are compared with its training data. Exit 0 without drift, 3 with drift
(for a scheduler to alert on), 2 for bad input; the JSON summary is the last
stdout line and the TFDV comparison is written to OUTPUT_DIR/drift/<time>/."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import FEATURES, make_data, one_error_line, run_json

pytestmark = pytest.mark.e2e
REPORT_FILES = {"statistics.pbtxt", "statistics.json", "anomalies.pbtxt", "anomalies.json",
                "summary.json"}


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("drift")
    train = root / "train.csv"
    make_data(n_normal=300, n_outliers=15, seed=1).to_csv(train, index=False)
    out = root / "out"
    summary = run_json("run", "--data", train, "--label-column", "label", "--output", out,
                       "--epochs", "2")
    assert summary["pushed_model"]
    return {"root": root, "out": out, "pushed": summary["pushed_model"]}


def _reports(out):
    d = out / "drift"
    return sorted(os.listdir(d)) if d.exists() else []


def test_resample_is_not_drift_exit_0_and_the_comparison_is_written(served, main):
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2

    data = served["root"] / "resample.csv"
    make_data(n_normal=300, n_outliers=15, seed=2).to_csv(data, index=False)
    code, out, err = main("drift", "--reference", str(served["out"]),
                           "--data", str(data))
    assert code == 0, err[-3000:]
    summary = json.loads(out.strip().splitlines()[-1])
    assert len(out.strip().splitlines()) == 1
    assert summary["drift"] is False and summary["drifted"] == [] and summary["anomalies"] == []
    assert {m["feature"] for m in summary["measurements"]} == set(FEATURES) | {"label"}
    assert all(m["value"] < 0.1 for m in summary["measurements"])
    assert summary["rows"] == 315 and summary["label_compared"] is True
    assert summary["reference"]["model"] == served["pushed"]
    assert "no drift above the thresholds" in err
    report = summary["report_dir"]
    assert os.path.dirname(report) == str(served["out"] / "drift")
    assert set(os.listdir(report)) == REPORT_FILES
    stats = text_format.Parse(open(os.path.join(report, "statistics.pbtxt")).read(),
                              statistics_pb2.DatasetFeatureStatisticsList())
    assert stats.datasets[0].num_examples == 315
    anomalies = text_format.Parse(open(os.path.join(report, "anomalies.pbtxt")).read(),
                                  anomalies_pb2.Anomalies())
    assert len(anomalies.drift_skew_info) == len(FEATURES) + 1 and not anomalies.anomaly_info
    assert json.load(open(os.path.join(report, "anomalies.json")))["drift_skew_info"]
    assert json.load(open(os.path.join(report, "summary.json")))["drift"] is False


def test_shifted_feature_is_drift_exit_3(served):
    data = served["root"] / "shifted.csv"
    df = make_data(n_normal=300, n_outliers=15, seed=3)
    df["x5"] = df["x5"] * 2 + 10
    df.to_csv(data, index=False)
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "drift", "--reference", str(served["out"]),
         "--data", str(data)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 3, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["drift"] is True
    assert [(d["feature"], d["measure"]) for d in summary["drifted"]] == [
        ("x5", "jensen_shannon_divergence")]
    assert summary["drifted"][0]["value"] > 0.1
    assert "DRIFT    x5: Jensen-Shannon divergence" in proc.stderr
    text = open(os.path.join(summary["report_dir"], "anomalies.pbtxt")).read()
    assert "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH" in text and 'step: "x5"' in text


def test_more_anomalies_is_label_drift_and_unlabelled_data_compares_features(served, main):
    data = served["root"] / "poisoned.csv"
    make_data(n_normal=210, n_outliers=90, seed=4).to_csv(data, index=False)
    code, out, _ = main("drift", "--reference", str(served["out"]),
                         "--data", str(data), "--js-threshold", "0.9")
    summary = json.loads(out.strip().splitlines()[-1])
    assert code == 3 and summary["thresholds"]["jensen_shannon_divergence"] == 0.9
    assert [d["feature"] for d in summary["drifted"]] == ["label"]
    unlabelled = served["root"] / "unlabelled.csv"
    make_data(n_normal=300, n_outliers=15, seed=5).drop(columns=["label"]).to_csv(
        unlabelled, index=False)
    code, out, err = main("drift", "--reference", str(served["out"]),
                           "--data", str(unlabelled))
    summary = json.loads(out.strip().splitlines()[-1])
    assert code == 0, err[-2000:]
    assert summary["label_compared"] is False
    assert {m["feature"] for m in summary["measurements"]} == set(FEATURES)


def test_bad_input_is_exit_2_one_line_and_writes_nothing(served, main):
    before = _reports(served["out"])
    bad = served["root"] / "bad.csv"
    df = make_data(n_normal=50, n_outliers=2, seed=6)
    df["x2"] = df["x2"].astype(object)
    df.loc[3, "x2"] = "abc"
    df.to_csv(bad, index=False)
    code, out, err = main("drift", "--reference", str(served["out"]), "--data", str(bad))
    assert code == 2 and out == ""
    assert one_error_line(err).startswith(f"error: {bad}:5: x2: ")
    missing = served["root"] / "missing_column.csv"
    df.drop(columns=["x2", "x4"]).to_csv(missing, index=False)
    code, out, err = main("drift", "--reference", str(served["out"]),
                           "--data", str(missing))
    assert code == 2 and "'x2', 'x4'" in one_error_line(err)
    assert _reports(served["out"]) == before  # no report, no leftover temporary directory


def test_empty_cells_are_compared_and_infinite_rows_set_aside(served, main):
    data = served["root"] / "holes.csv"
    df = make_data(n_normal=300, n_outliers=15, seed=7)
    df.loc[[4, 9, 200], "x1"] = np.nan      # missing values: imputed, as in training
    df.loc[[11, 12], "x2"] = np.inf         # not a measurement: set aside
    df.to_csv(data, index=False)
    code, out, err = main("drift", "--reference", str(served["out"]), "--data", str(data))
    assert code == 0, err[-2000:]
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["rows"] == 315 and summary["quarantined_rows"] == 2
    quarantined = os.path.join(summary["report_dir"], "quarantine", "quarantined.csv")
    assert len(open(quarantined).read().strip().splitlines()) == 1 + 2
    assert summary["anomalies"] == []  # 1% empty cells in x1 is within drift.max_missing_share
