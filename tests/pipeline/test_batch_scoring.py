"""`anomaly-pipeline score` as a Beam pipeline: scores equal direct SavedModel calls.

A small real SavedModel (tests/helpers/savedmodels.py, the production export
code) scores generated CSVs through pipeline/batch_scoring/ with small chunks, so
every run has many Beam elements; the output must have one row per input row,
in input order, input columns verbatim, and errors/flags equal to calling the
`score_features` signature directly.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from components.model.explain import top_features
from components.model.scorer import SavedModelScorer
from pipeline.batch_scoring import score as scoring
from components.errors import InputError

from tests.helpers.savedmodels import make_rows, make_saved_model

FEATURES = [f"x{i}" for i in range(6)]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_saved_model(str(tmp_path_factory.mktemp("model") / "1"), FEATURES,
                            threshold=2.0, seed=3)


@pytest.fixture(scope="module")
def scorer(model_dir):
    return SavedModelScorer(model_dir)


def _write_csv(path, x, label, columns=None, newline="\n", formatter=repr):
    columns = columns or FEATURES
    order = [FEATURES.index(c) for c in columns]
    with open(path, "w", newline="") as f:
        f.write(",".join(columns + ["label"]) + newline)
        for row, y in zip(x, label):
            f.write(",".join(formatter(float(row[j])) for j in order) + f",{y}" + newline)
    return path


def _expected(scorer, x):
    out = scorer.score_matrix(x.astype(np.float32))
    return out["reconstruction_error"], out["is_anomaly"].astype(int)


def _check_output(out_csv, in_lines, errors, flags):
    with open(out_csv) as f:
        header, *rows = f.read().splitlines()
    assert header == in_lines[0] + ",reconstruction_error,is_anomaly,top_features"
    assert len(rows) == len(in_lines) - 1 == len(errors)
    for i, (row, src) in enumerate(zip(rows, in_lines[1:])):
        head, err, flag, top = row.rsplit(",", 3)
        names = [p.split(":")[0] for p in top.split(";")]
        assert len(names) == 3 and set(names) <= set(FEATURES), f"row {i}: {top}"
        assert head == src, f"row {i}: input columns not copied verbatim / out of order"
        # Chunks and the direct call run the matmul on different batch shapes,
        # which may round the last float32 bit differently.
        assert np.isclose(np.float32(float(err)), errors[i], rtol=1e-6, atol=0), \
            f"row {i}: {err} != {errors[i]}"
        assert int(flag) == flags[i]


def test_beam_scores_equal_direct_savedmodel_calls(tmp_path, model_dir, scorer):
    x, label = make_rows(3000, FEATURES, seed=1)
    src = _write_csv(tmp_path / "in.csv", x, label)
    out = tmp_path / "out.csv"
    stats = scoring.score_csv(model_dir, str(src), str(out), batch_size=128)
    errors, flags = _expected(scorer, x)
    assert stats["chunks"] >= 20  # many Beam elements, each a chunk of rows
    assert stats["rows"] == 3000 and stats["flagged"] == int(flags.sum())
    assert 0 < stats["flagged"] < 3000
    assert stats["threshold"] == 2.0
    with open(src) as f:
        _check_output(out, f.read().splitlines(), errors, flags)
    assert sorted(os.listdir(tmp_path)) == ["in.csv", "out.csv"]  # no temp files left


def test_columns_in_any_order_crlf_blank_lines_and_odd_numbers(tmp_path, model_dir, scorer):
    """Feature order differs from the model's; CRLF; a blank line; '+3' and padded cells
    (valid input that pyarrow rejects: the chunk falls back to pandas)."""
    x, label = make_rows(400, FEATURES, seed=2)
    columns = list(reversed(FEATURES))
    src = _write_csv(tmp_path / "in.csv", x, label, columns=columns, newline="\r\n")
    with open(src, "rb") as f:
        raw = f.read().split(b"\r\n")
    raw[5] = raw[5].replace(b",", b", ", 1)           # ' 12.5' padded cell
    raw[7] = b"+" + raw[7]                             # '+49.1' leading plus
    raw.insert(10, b"")                                # a blank line
    with open(src, "wb") as f:
        f.write(b"\r\n".join(raw))
    out = tmp_path / "out.csv"
    stats = scoring.score_csv(model_dir, str(src), str(out), batch_size=50)
    assert stats["rows"] == 400
    errors, flags = _expected(scorer, x)
    lines = [line for line in raw if line]
    _check_output(out, [line.decode() for line in lines], errors, flags)


def test_directory_input_keeps_file_order(tmp_path, model_dir, scorer):
    x, label = make_rows(900, FEATURES, seed=4)
    d = tmp_path / "in"
    d.mkdir()
    _write_csv(d / "a.csv", x[:500], label[:500])
    _write_csv(d / "b.csv", x[500:], label[500:])
    out = tmp_path / "out.csv"
    stats = scoring.score_csv(model_dir, str(d), str(out), batch_size=100)
    assert stats["rows"] == 900
    errors, flags = _expected(scorer, x)
    with open(d / "a.csv") as fa, open(d / "b.csv") as fb:
        lines = fa.read().splitlines() + fb.read().splitlines()[1:]
    _check_output(out, lines, errors, flags)


def test_chunks_cover_the_file_exactly(tmp_path):
    x, label = make_rows(1000, FEATURES, seed=5)
    src = _write_csv(tmp_path / "in.csv", x, label)
    header, chunks = scoring.plan_chunks([str(src)], 64)
    size = os.path.getsize(src)
    with open(src, "rb") as f:
        data = f.read()
    assert header == data.split(b"\n", 1)[0]
    assert chunks[0].start == len(header) + 1 and chunks[-1].end == size
    for a, b in zip(chunks, chunks[1:]):
        assert a.end == b.start and data[a.end - 1:a.end] == b"\n"
    assert sum(data[c.start:c.end].count(b"\n") for c in chunks) == 1000


def test_bad_input_is_refused_before_any_output(tmp_path, model_dir):
    x, label = make_rows(50, FEATURES, seed=6)
    src = _write_csv(tmp_path / "in.csv", x, label)
    with open(src) as f:
        text = f.read()
    with open(src, "w") as f:
        f.write(text.replace("x5,label", "other,label", 1))  # a column the model lacks
    with pytest.raises(InputError, match="x5|other"):
        scoring.score_csv(model_dir, str(src), str(tmp_path / "out.csv"))
    assert not (tmp_path / "out.csv").exists()


def test_registry_uri_without_registry_is_a_usage_error(tmp_path, model_dir, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    x, label = make_rows(20, FEATURES)
    src = _write_csv(tmp_path / "in.csv", x, label)
    with pytest.raises(InputError, match="--registry-uri"):
        scoring.score_csv("models:/anomaly_detector@champion", str(src), str(tmp_path / "o.csv"))


def test_cli_score_json_line_and_beam_args(tmp_path, model_dir, scorer):
    x, label = make_rows(700, FEATURES, seed=7)
    src = _write_csv(tmp_path / "in.csv", x, label)
    out = tmp_path / "out.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "score", "--model", os.path.dirname(model_dir),
         "--input", str(src), "--output", str(out), "--batch-size", "100",
         "--beam-arg=--direct_num_workers=1", "--beam-arg=--direct_running_mode=in_memory"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(proc.stdout.strip().splitlines()) == 1  # stdout: the JSON line only
    assert stats["model"] == model_dir and stats["rows"] == 700
    # The terminal: rows done / total and the outcome; TF, Beam and absl in the log file.
    lines = proc.stderr.strip().splitlines()
    assert lines[0] == "scored 0/700 rows" and "scored 700/700 rows" in lines
    assert lines[-1].startswith("scored 700 rows, ") and str(out) in lines[-1]
    assert len(lines) <= 8 and "Traceback" not in proc.stderr, proc.stderr
    assert not any(" INFO " in line or "WARNING" in line for line in lines), proc.stderr
    log = open(stats["log"]).read()
    assert "Beam pipeline: 7 chunks scored" in log and "scored 700/700 rows" in log
    frame = pd.read_csv(out)
    errors, flags = _expected(scorer, x)
    np.testing.assert_array_equal(frame["reconstruction_error"].to_numpy(np.float32), errors)
    np.testing.assert_array_equal(frame["is_anomaly"].to_numpy(), flags)
    np.testing.assert_array_equal(frame["label"].to_numpy(), label)
    # Why each row was flagged: the same explanation as the model's feature_errors give.
    direct = scorer.score_matrix(x.astype(np.float32))
    assert frame["top_features"].tolist() == top_features(direct["feature_errors"], FEATURES)


def test_top_features_column_can_be_left_out(tmp_path, model_dir):
    x, label = make_rows(300, FEATURES, seed=8)
    src = _write_csv(tmp_path / "in.csv", x, label)
    out = tmp_path / "out.csv"
    scoring.score_csv(model_dir, str(src), str(out), batch_size=100, top_features=0)
    assert list(pd.read_csv(out).columns) == FEATURES + ["label", "reconstruction_error",
                                                         "is_anomaly"]
    scoring.score_csv(model_dir, str(src), str(out), batch_size=100, top_features=1)
    assert all(t.count(":") == 1 for t in pd.read_csv(out)["top_features"])


def test_cli_registry_uri_missing_is_one_line_exit_2(tmp_path, model_dir):
    x, label = make_rows(20, FEATURES)
    src = _write_csv(tmp_path / "in.csv", x, label)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "score", "--model",
         "models:/anomaly_detector@champion", "--input", str(src), "--output",
         str(tmp_path / "o.csv")], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2
    (last,) = proc.stderr.strip().splitlines()  # the one line, nothing before it
    assert last.startswith("error: models:/anomaly_detector@champion: ") and "--registry-uri" in last
    assert "Traceback" not in proc.stderr


def test_rows_watcher_counts_the_rows_the_part_files_name(tmp_path):
    from pipeline.batch_scoring.beam_job import PART_ROWS

    watcher = scoring.RowsWatcher(str(tmp_path), total=250)
    assert watcher.rows_written() == 0
    for i, rows in enumerate((100, 100, 50)):
        (tmp_path / f"part-{i:08d}{PART_ROWS}{rows}").write_bytes(b"")
    (tmp_path / "unrelated.tmp").write_bytes(b"")
    assert watcher.rows_written() == 250
    assert scoring.RowsWatcher(str(tmp_path / "gone"), total=1).rows_written() == 0
