"""`anomaly-pipeline drift --reference OUTPUT_DIR --data CSV` (issue 7, item 3).

Exit 0 without drift, 3 with drift (for a scheduler to alert on), 2 for bad
input; the JSON summary is the last stdout line and the TFDV comparison is
written to OUTPUT_DIR/drift/<time>/. The e2e part runs the pipeline once to
have a served model, then compares new CSVs with its training data.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from pipeline import cli

from test_e2e import make_data

FEATURES = [f"x{i}" for i in range(8)]
REPORT_FILES = {"statistics.pbtxt", "statistics.json", "anomalies.pbtxt", "anomalies.json",
                "summary.json"}


def _main(capsys, *argv):
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _error_line(err):
    lines = [line for line in err.strip().splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, err[-2000:]
    assert "Traceback" not in err
    return lines[0]


# --------------------------------------------------------------------------- no pipeline needed


def test_reference_directory_must_exist(capsys, tmp_path):
    data = tmp_path / "new.csv"
    make_data(n_normal=20, n_outliers=1).to_csv(data, index=False)
    code, out, err = _main(capsys, "drift", "--reference", str(tmp_path / "nope"),
                           "--data", str(data))
    assert code == 2 and out == ""
    assert _error_line(err) == f"error: {tmp_path / 'nope'}: reference output directory not found"


def test_reference_without_a_run_is_bad_input(capsys, tmp_path):
    data = tmp_path / "new.csv"
    make_data(n_normal=20, n_outliers=1).to_csv(data, index=False)
    code, out, err = _main(capsys, "drift", "--reference", str(tmp_path), "--data", str(data))
    assert code == 2 and out == ""
    assert "no metadata.sqlite" in _error_line(err)
    assert not (tmp_path / "drift").exists()


def test_invalid_threshold_is_a_usage_error(capsys, tmp_path):
    code, _, err = _main(capsys, "drift", "--reference", str(tmp_path), "--data", "x.csv",
                         "--js-threshold", "0")
    assert code == 2 and "drift.js_threshold" in _error_line(err)


def test_served_version_is_the_newest_integer_directory(tmp_path):
    from components.validation.reference import served_version_dir

    base = tmp_path / "serving_model" / "m"
    for v in ("9", "10", "tmp-11", "2"):
        (base / v).mkdir(parents=True)
    assert served_version_dir(str(tmp_path), None) == str(base / "10")
    assert served_version_dir(str(tmp_path), "other") is None


def test_report_directories_never_collide(tmp_path):
    from pipeline.drift import _report_dir

    first = _report_dir(str(tmp_path))
    os.makedirs(first)
    second = _report_dir(str(tmp_path))
    assert second != first and second.startswith(first)


# --------------------------------------------------------------------------- against a served model


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("drift")
    train = root / "train.csv"
    make_data(n_normal=300, n_outliers=15, seed=1).to_csv(train, index=False)
    out = root / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "run", "--data", str(train), "--label-column",
         "label", "--output", str(out), "--epochs", "2"],
        capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["pushed_model"]
    return {"root": root, "out": out, "pushed": summary["pushed_model"]}


def _reports(out):
    d = out / "drift"
    return sorted(os.listdir(d)) if d.exists() else []


@pytest.mark.e2e
def test_resample_is_not_drift_exit_0_and_the_comparison_is_written(served, capsys):
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2

    data = served["root"] / "resample.csv"
    make_data(n_normal=300, n_outliers=15, seed=2).to_csv(data, index=False)
    code, out, err = _main(capsys, "drift", "--reference", str(served["out"]),
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


@pytest.mark.e2e
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


@pytest.mark.e2e
def test_more_anomalies_is_label_drift_and_unlabelled_data_compares_features(served, capsys):
    data = served["root"] / "poisoned.csv"
    make_data(n_normal=210, n_outliers=90, seed=4).to_csv(data, index=False)
    code, out, _ = _main(capsys, "drift", "--reference", str(served["out"]),
                         "--data", str(data), "--js-threshold", "0.9")
    summary = json.loads(out.strip().splitlines()[-1])
    assert code == 3 and summary["thresholds"]["jensen_shannon_divergence"] == 0.9
    assert [d["feature"] for d in summary["drifted"]] == ["label"]
    unlabelled = served["root"] / "unlabelled.csv"
    make_data(n_normal=300, n_outliers=15, seed=5).drop(columns=["label"]).to_csv(
        unlabelled, index=False)
    code, out, err = _main(capsys, "drift", "--reference", str(served["out"]),
                           "--data", str(unlabelled))
    summary = json.loads(out.strip().splitlines()[-1])
    assert code == 0, err[-2000:]
    assert summary["label_compared"] is False
    assert {m["feature"] for m in summary["measurements"]} == set(FEATURES)


@pytest.mark.e2e
def test_bad_input_is_exit_2_one_line_and_writes_nothing(served, capsys):
    before = _reports(served["out"])
    bad = served["root"] / "bad.csv"
    df = make_data(n_normal=50, n_outliers=2, seed=6)
    df["x2"] = df["x2"].astype(object)
    df.loc[3, "x2"] = "abc"
    df.to_csv(bad, index=False)
    code, out, err = _main(capsys, "drift", "--reference", str(served["out"]), "--data", str(bad))
    assert code == 2 and out == ""
    assert _error_line(err).startswith(f"error: {bad}:5: x2: ")
    missing = served["root"] / "missing_column.csv"
    df.drop(columns=["x2", "x4"]).to_csv(missing, index=False)
    code, out, err = _main(capsys, "drift", "--reference", str(served["out"]),
                           "--data", str(missing))
    assert code == 2 and "'x2', 'x4'" in _error_line(err)
    assert _reports(served["out"]) == before  # no report, no leftover temporary directory


@pytest.mark.e2e
def test_rows_with_missing_values_are_set_aside_and_counted(served, capsys):
    data = served["root"] / "holes.csv"
    df = make_data(n_normal=300, n_outliers=15, seed=7)
    df.loc[[4, 9, 200], "x1"] = np.nan
    df.to_csv(data, index=False)
    code, out, err = _main(capsys, "drift", "--reference", str(served["out"]), "--data", str(data))
    assert code == 0, err[-2000:]
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["rows"] == 315 and summary["quarantined_rows"] == 3
    quarantined = os.path.join(summary["report_dir"], "quarantine", "quarantined.csv")
    assert len(open(quarantined).read().strip().splitlines()) == 1 + 3
