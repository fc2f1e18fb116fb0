"""CLI usage and input errors: exit 2 and one `error: ...` line, never a traceback."""
import json
import subprocess
import sys

import pytest

from pipeline import cli
from components.input_checks.problems import NUMBERS_HINT
from tests.helpers import one_error_line


@pytest.mark.parametrize("argv, needle", [
    ([], "required"),
    (["run"], "--data"),
    (["run", "--data", "x.csv", "--epochs", "many"], "--epochs"),
    (["run", "--data", "x.csv", "--runner", "spark"], "--runner"),
    (["run", "--data", "x.csv", "--threshold-param", "k"], "NAME=VALUE"),
    (["score", "--model", "m"], "--input"),
])
def test_usage_errors_exit_2(main, argv, needle):
    code, _, err = main(*argv)
    assert code == 2
    assert needle in one_error_line(err)


@pytest.mark.parametrize("extra, needle", [
    (["--epochs", "0"], "epochs"),
    (["--threshold-method", "median"], "unknown threshold method"),
    (["--threshold-method", "quantile", "--threshold-param", "q=1.5"], "q"),
    (["--eval-ratio", "1"], "eval_ratio"),
])
def test_invalid_settings_exit_2(main, tmp_path, extra, needle):
    data = tmp_path / "d.csv"
    data.write_text("a,b\n1,2\n3,4\n")
    code, out, err = main("run", "--data", str(data), "--output", str(tmp_path / "o"),
                           *extra)
    assert code == 2 and out == ""
    assert needle in one_error_line(err)


def test_missing_data_file_names_the_file(main, tmp_path):
    missing = tmp_path / "nope.csv"
    code, _, err = main("run", "--data", str(missing), "--output", str(tmp_path / "o"))
    assert code == 2
    assert str(missing) in one_error_line(err)


def test_bad_value_names_file_row_and_column(main, tmp_path):
    data = tmp_path / "bad.csv"
    # b is a number column (39 of 40 cells are numbers), so 'oops' is an error
    rows = [f"{i % 9 * 0.5},{i % 7 * 1.5},0" for i in range(40)]
    rows[1] = "1,oops,0"
    data.write_text("a,b,label\n" + "\n".join(rows) + "\n")
    code, _, err = main("run", "--data", str(data), "--label-column", "label",
                         "--output", str(tmp_path / "o"))
    line = one_error_line(err)
    assert code == 2
    assert f"{data}:3: b:" in line and "oops" in line and "--categorical-columns" in line


def test_too_few_rows_is_refused_before_the_dag(main, tmp_path):
    data = tmp_path / "tiny.csv"
    data.write_text("a,b,label\n1,2,0\n3,4,0\n5,6,1\n")
    code, _, err = main("run", "--data", str(data), "--label-column", "label",
                         "--output", str(tmp_path / "o"))
    assert code == 2
    assert one_error_line(err) == (f"error: {data}: 3 data rows; at least 30 are needed to "
                                   f"train and evaluate a model (data.min_rows)")
    assert not (tmp_path / "o" / "serving").exists()


def test_label_column_missing(main, tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("a,b\n1,2\n3,4\n")
    code, _, err = main("run", "--data", str(data), "--label-column", "y",
                         "--output", str(tmp_path / "o"))
    assert code == 2 and "y" in one_error_line(err)


def test_score_with_missing_model_exits_2(main, tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("a,b\n1,2\n")
    code, _, err = main("score", "--model", str(tmp_path / "nomodel"), "--input",
                         str(data), "--output", str(tmp_path / "o.csv"))
    assert code == 2 and "nomodel" in one_error_line(err)


def test_help_explains_every_run_option():
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "run", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    parser = cli.build_parser()
    run = parser._subparsers._group_actions[0].choices["run"]
    for action in run._actions:
        if action.option_strings and action.dest != "help":
            assert action.help, action.option_strings
            assert action.option_strings[0] in proc.stdout


def test_an_unreadable_served_model_stops_run_instead_of_disabling_the_column_guard(main,
                                                                                      tmp_path):
    data = tmp_path / "d.csv"
    data.write_text("a,b,label\n1,2,0\n3,4,1\n")
    version = tmp_path / "o" / "serving_model" / "anomaly_detector" / "17"
    (version / "assets").mkdir(parents=True)
    (version / "saved_model.pb").write_bytes(b"")
    (version / "assets" / "model_metadata.json").write_text("{not json")
    code, out, err = main("run", "--data", data, "--label-column", "label",
                          "--output", tmp_path / "o")
    line = one_error_line(err)
    assert code == 2 and out == ""
    assert "model_metadata.json" in line and "--allow-schema-change" in line


def test_run_help_names_every_component_of_the_dag():
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "run", "--help"],
                          capture_output=True, text=True, timeout=120)
    text = " ".join(proc.stdout.split())
    for name in ("CsvExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "DataGate",
                 "Transform", "Trainer", "AnomalyEvaluator", "Pusher"):
        assert name in text


def test_an_input_error_is_one_line_with_nothing_before_it(tmp_path):
    """As a subprocess (the console script's path, with the log session and park())."""
    data = tmp_path / "bad.csv"
    rows = [f"{i % 9 * 0.5},{i % 7 * 1.5},0" for i in range(40)]
    rows[1] = "1,oops,0"  # b is 39/40 numbers: a number column with one bad cell
    data.write_text("a,b,label\n" + "\n".join(rows) + "\n")
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "run", "--data", str(data),
                           "--label-column", "label", "--output", str(tmp_path / "o")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [f"error: {data}:3: b: non-numeric value 'oops'"
                                        f"{NUMBERS_HINT}"]
    (log,) = (tmp_path / "o" / "logs").iterdir()  # the log says it, without a traceback
    text = log.read_text()
    assert "stopped: " in text and "Traceback" not in text
