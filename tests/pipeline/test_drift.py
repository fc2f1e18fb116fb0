"""`anomaly-pipeline drift --reference OUTPUT_DIR --data CSV` without a served model:
bad input is exit 2 with one line (tests/e2e/test_drift.py compares real data)."""
import os

import pytest

from tests.helpers import make_data, one_error_line



# --------------------------------------------------------------------------- no pipeline needed


def test_reference_directory_must_exist(main, tmp_path):
    data = tmp_path / "new.csv"
    make_data(n_normal=20, n_outliers=1).to_csv(data, index=False)
    code, out, err = main("drift", "--reference", str(tmp_path / "nope"),
                           "--data", str(data))
    assert code == 2 and out == ""
    assert one_error_line(err) == f"error: {tmp_path / 'nope'}: reference output directory not found"


def test_reference_without_a_run_is_bad_input(main, tmp_path):
    data = tmp_path / "new.csv"
    make_data(n_normal=20, n_outliers=1).to_csv(data, index=False)
    code, out, err = main("drift", "--reference", str(tmp_path), "--data", str(data))
    assert code == 2 and out == ""
    assert "no metadata.sqlite" in one_error_line(err)
    assert not (tmp_path / "drift").exists()


def test_invalid_threshold_is_a_usage_error(main, tmp_path):
    code, _, err = main("drift", "--reference", str(tmp_path), "--data", "x.csv",
                         "--js-threshold", "0")
    assert code == 2 and "drift.js_threshold" in one_error_line(err)


def test_served_version_is_the_newest_integer_directory(tmp_path):
    from pipeline.drift_check import _model_dir

    base = tmp_path / "serving_model" / "m"
    for v in ("9", "10", ".tmp-11", "2"):
        (base / v).mkdir(parents=True)
        (base / v / "saved_model.pb").write_bytes(b"")
    assert _model_dir(str(tmp_path), None) == str(base / "10")
    assert _model_dir(str(tmp_path), "other") is None


def test_report_directories_never_collide(tmp_path):
    from pipeline.drift_check import _report_dir

    first = _report_dir(str(tmp_path))
    os.makedirs(first)
    second = _report_dir(str(tmp_path))
    assert second != first and second.startswith(first)


def test_drift_reads_the_metadata_mysql_store_when_given(main, tmp_path, monkeypatch):
    from pipeline import drift_check, lineage

    seen = {}

    def fake_open(metadata_path, connection_config=None):
        seen["config"] = connection_config
        raise RuntimeError("stop here")

    monkeypatch.setattr(lineage, "open_store", fake_open)
    data = tmp_path / "new.csv"
    make_data(n_normal=20, n_outliers=1).to_csv(data, index=False)
    with pytest.raises(RuntimeError, match="stop here"):
        drift_check.served_reference(str(tmp_path), connection_config="mysql-config")
    assert seen["config"] == "mysql-config"
    code, _, err = main("drift", "--reference", tmp_path, "--data", data,
                        "--metadata-mysql", "db.internal:3306/tfx")
    assert code == 1 and seen["config"].mysql.host == "db.internal"
