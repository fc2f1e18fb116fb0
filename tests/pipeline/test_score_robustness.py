"""`anomaly-pipeline score` on broken input (issue 7, item 6), through the CLI only.

`score` follows the input rules of `run` (components/input_checks) except that
nothing is set aside: a row it cannot score is an error, because the output
must have one row per input row. Empty and `nan` cells are missing values,
scored as in training; `;` files and a byte-order mark are read as `run` does.
Every broken file gives exit 2 and one line
`error: <file>:<row>: <column>: <problem>`, and the output path is left as it
was (a previous file there is untouched, no temporary file is left); every
valid file gives exactly one output row per input row.

The model is a small real SavedModel with the production signatures
(tests/helpers/savedmodels.py), so no pipeline run is needed.
"""
import csv
import json
import io
import os
import re

import numpy as np
import pandas as pd
import pytest

from pipeline import cli

from tests.helpers.savedmodels import make_rows, make_saved_model

FEATURES = [f"x{i}" for i in range(4)]
PREVIOUS = "previous output, must survive a failed run\n"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return make_saved_model(str(tmp_path_factory.mktemp("model") / "1"), FEATURES,
                            threshold=2.0, seed=1)


def _good_text(n=30, newline="\n"):
    x, label = make_rows(n, FEATURES, seed=2)
    lines = [",".join(FEATURES + ["label"])]
    lines += [",".join(repr(float(v)) for v in row) + f",{y}" for row, y in zip(x, label)]
    return newline.join(lines) + newline


def _score(capsys, model_dir, path, tmp_path):
    out = tmp_path / "scored.csv"
    out.write_text(PREVIOUS)
    code = cli.main(["score", "--model", model_dir, "--input", str(path),
                     "--output", str(out)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err, out


def _replace_cell(text, line_no, column, value):
    lines = text.split("\n")
    header = lines[0].split(",")
    cells = lines[line_no - 1].split(",")
    cells[header.index(column)] = value
    lines[line_no - 1] = ",".join(cells)
    return "\n".join(lines)


GOOD = _good_text()
CASES = {
    # name: (file bytes, expected error prefix after "error: <file>")
    "non_numeric": (_replace_cell(GOOD, 5, "x2", "abc").encode(), ":5: x2: "),
    "inf": (_replace_cell(GOOD, 4, "x3", "-inf").encode(), ":4: x3: "),
    "line_break_in_value": (_replace_cell(GOOD, 5, "x1", '"7\n"').encode(),
                            ":5: a quoted value holds a line break"),
    "two_bad_rows_counted": (_replace_cell(_replace_cell(GOOD, 6, "x2", "abc"), 9, "x2", "x")
                             .encode(), ":6: x2: "),
    "label_not_0_1": (_replace_cell(GOOD, 8, "label", "2").encode(), ":8: label: "),
    "ragged_row": (GOOD.replace(GOOD.split("\n")[9], GOOD.split("\n")[9] + ",7.0", 1).encode(),
                   ":10: "),
    "missing_column": ("\n".join(",".join(line.split(",")[1:]) for line in GOOD.split("\n"))
                       .encode(), ":1: "),
    "extra_column": ("\n".join(line + (",extra" if i == 0 else ",1.0") if line else line
                               for i, line in enumerate(GOOD.split("\n"))).encode(), ":1: "),
    "duplicate_column": (GOOD.replace("x3,label", "x2,label", 1).encode(), ":1: "),
    "blank_column_name": (GOOD.replace("x3,label", "x3,label,", 1).encode(), ":1: "),
    "not_utf8": (_replace_cell(GOOD, 6, "x1", "7").encode().replace(b",7,", b",7\xff,", 1),
                 ":6: "),
    "header_only": (GOOD.split("\n")[0].encode() + b"\n", ""),
    "empty_file": (b"", ""),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_broken_input_is_exit_2_one_line_and_the_output_untouched(name, capsys, model_dir,
                                                                    tmp_path):
    content, where = CASES[name]
    path = tmp_path / "in.csv"
    path.write_bytes(content)
    code, out, err, output = _score(capsys, model_dir, path, tmp_path)
    assert code == 2, err[-2000:]
    assert out == ""
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err[-2000:]
    assert errors[0].startswith(f"error: {path}{where}"), errors[0]
    if name == "two_bad_rows_counted":
        assert re.search(r"\(2 rows, first: 6, 9\)$", errors[0]), errors[0]
    assert output.read_text() == PREVIOUS
    assert sorted(os.listdir(tmp_path)) == ["in.csv", "scored.csv"]


def test_missing_input_file_is_exit_2(capsys, model_dir, tmp_path):
    code, out, err, output = _score(capsys, model_dir, tmp_path / "nope.csv", tmp_path)
    assert code == 2 and out == ""
    missing = tmp_path / "nope.csv"
    assert err.strip().splitlines()[-1] == f"error: {missing}: no such file or directory"
    assert output.read_text() == PREVIOUS


@pytest.mark.parametrize("variant", ["crlf", "no_final_newline", "reordered_no_label",
                                     "number_forms", "one_row", "empty_and_nan_cells",
                                     "semicolons", "byte_order_mark"])
def test_valid_input_gives_one_output_row_per_input_row(variant, capsys, model_dir, tmp_path):
    text = _good_text(n=25)
    if variant == "crlf":
        text = text.replace("\n", "\r\n")
    elif variant == "no_final_newline":
        text = text.rstrip("\n")
    elif variant == "reordered_no_label":
        df = pd.read_csv(io.StringIO(text))
        text = df[list(reversed(FEATURES))].to_csv(index=False)
    elif variant == "number_forms":
        for i, form in enumerate(["1e-3", " 2.5 ", "+3", "-0", ".5", "50"]):
            text = _replace_cell(text, i + 2, "x1", form)
    elif variant == "one_row":
        text = "\n".join(text.split("\n")[:2]) + "\n"
    elif variant == "empty_and_nan_cells":  # missing values: imputed as in training
        text = _replace_cell(_replace_cell(text, 7, "x1", ""), 3, "x0", "nan")
        text = _replace_cell(_replace_cell(text, 9, "x2", " NA "), 10, "x3", "Null")
    sep = ";" if variant == "semicolons" else ","
    path = tmp_path / "in.csv"
    path.write_bytes(("\ufeff" if variant == "byte_order_mark" else "").encode()
                     + text.replace(",", sep).encode())
    code, out, err, output = _score(capsys, model_dir, path, tmp_path)
    assert code == 0, err[-3000:]
    in_rows = [line for line in text.replace("\r\n", "\n").split("\n")[1:] if line]
    scored = pd.read_csv(output, sep=sep)
    assert len(scored) == len(in_rows)
    assert list(scored.columns[-3:]) == ["reconstruction_error", "is_anomaly", "top_features"]
    assert np.isfinite(scored["reconstruction_error"]).all()
    assert set(scored["is_anomaly"].unique()) <= {0, 1}
    with open(output, newline="") as f:
        out_lines = [line for line in f.read().replace("\r\n", "\n").split("\n") if line]
    for src, line in zip(in_rows, out_lines[1:]):
        # input cells copied verbatim, in order, with the input's delimiter; the
        # top_features cell ("x1:0.5;x0:0.3") is quoted when it holds the delimiter
        assert line.startswith(src.replace(",", sep) + sep)
        cells = next(csv.reader([line], delimiter=sep))
        assert len(cells) == len(src.split(",")) + 3
        assert {part.split(":")[0] for part in cells[-1].split(";")} <= set(FEATURES)


def test_on_bad_rows_skip_scores_the_rest_and_writes_the_rejects(capsys, model_dir, tmp_path):
    text = _good_text(n=30)
    text = _replace_cell(text, 5, "x2", "abc")                      # non-numeric
    text = _replace_cell(text, 9, "x3", "inf")                      # non-finite
    lines = text.split("\n")
    lines[11] += ",7.0"                                             # line 12: ragged
    lines[14] = lines[14].replace(",", ',"', 1) + '\n2"'             # line 15-16: line break
    text = "\n".join(lines)
    path = tmp_path / "in.csv"
    path.write_text(text)
    out = tmp_path / "scored.csv"
    rejects = tmp_path / "scored.rejects.csv"
    rejects.write_text("stale\n")
    code = cli.main(["score", "--model", model_dir, "--input", str(path), "--output", str(out),
                     "--on-bad-rows", "skip"])
    captured = capsys.readouterr()
    assert code == 0, captured.err[-3000:]
    stats = json.loads(captured.out.strip().splitlines()[-1])
    assert (stats["input_rows"], stats["rejected_rows"], stats["rows"]) == (30, 4, 26)
    assert stats["rejects"] == str(rejects)
    with open(rejects, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == FEATURES + ["label", "_source_line", "_problem"]
    assert [r[-2] for r in rows[1:]] == ["5", "9", "12", "15"]
    problems = [r[-1] for r in rows[1:]]
    assert problems[0] == "x2: non-numeric value 'abc'" and "inf" in problems[1]
    assert "fields" in problems[2] and "line break" in problems[3]
    scored = pd.read_csv(out)
    assert len(scored) == 26
    good = pd.read_csv(io.StringIO(_good_text(n=30)))
    kept = [i for i in range(30) if i + 2 not in (5, 9, 12, 15)]
    np.testing.assert_allclose(scored["x0"].to_numpy(), good["x0"].to_numpy()[kept])
    assert sorted(os.listdir(tmp_path)) == ["in.csv", "scored.csv", "scored.rejects.csv"]
    # nothing to reject: a stale rejects file goes
    path.write_text(_good_text(n=30))
    assert cli.main(["score", "--model", model_dir, "--input", str(path), "--output", str(out),
                     "--on-bad-rows", "skip"]) == 0
    stats = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert stats["rejected_rows"] == 0 and stats["rejects"] is None and not rejects.exists()


def test_on_bad_rows_skip_still_stops_on_file_problems_and_mostly_bad_files(capsys, model_dir,
                                                                           tmp_path):
    path = tmp_path / "in.csv"
    output = tmp_path / "scored.csv"
    output.write_text(PREVIOUS)
    # an unbalanced quote swallows the rest of the file: never skipped
    lines = _good_text(n=10).split("\n")
    lines[3] = '"' + lines[3]
    path.write_text("\n".join(lines))
    code = cli.main(["score", "--model", model_dir, "--input", str(path), "--output",
                     str(output), "--on-bad-rows", "skip"])
    err = capsys.readouterr().err
    assert code == 2 and "unbalanced double quote" in err and output.read_text() == PREVIOUS
    text = _good_text(n=10)
    for line_no in range(2, 9):
        text = _replace_cell(text, line_no, "x0", "x")
    path.write_text(text)
    code = cli.main(["score", "--model", model_dir, "--input", str(path), "--output",
                     str(output), "--on-bad-rows", "skip"])
    err = capsys.readouterr().err
    assert code == 2 and "7 of 10 rows (70%) cannot be scored" in err
    assert output.read_text() == PREVIOUS
    assert sorted(os.listdir(tmp_path)) == ["in.csv", "scored.csv"]
