"""Tests for components/input_checks: one-line, actionable errors for bad input CSVs.

Row-level tests run twice (`engine` fixture): with the pyarrow fast pass, and
with it disabled so the exact Python pass checks every row; both must give
the same answer.
"""
import csv
import os
import pickle
import time

import numpy as np
import pytest

from components.input_checks import check as check_module
from components.columns import ColumnRoles
from components.input_checks import CsvInfo, InputError, check_csv, read_header, resolve_csv_files
from components.input_checks.problems import NUMBERS_HINT

HEADER = "a,b,c,label\n"


def write(path, text, mode="w"):
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        with open(path, "w", newline="") as f:  # keep \r\n exactly as written
            f.write(text)
    return str(path)


@pytest.fixture(params=["arrow", "python"])
def engine(request, monkeypatch):
    if request.param == "python":
        monkeypatch.setattr(check_module, "arrow_scan", lambda path, spec: None)
    return request.param


def error_of(*args, **kwargs) -> InputError:
    with pytest.raises(InputError) as info:
        check_csv(*args, **kwargs)
    return info.value


def assert_one_line(e: InputError, path: str, row=None, column=None):
    text = str(e)
    assert "\n" not in text and "\r" not in text
    assert text.startswith(path + (f":{row}: " if row is not None else ": ")), text
    if column is not None:
        assert text.startswith(f"{path}:{row}: {column}: "), text
    assert (e.path, e.row, e.column) == (path, row, column)
    return text


# --------------------------------------------------------------------------- InputError


def test_input_error_formats_one_line_with_optional_parts():
    assert str(InputError("d.csv", problem="file is empty")) == "d.csv: file is empty"
    assert str(InputError("d.csv", 3, None, "expected 4 fields, found 3")) == \
        "d.csv:3: expected 4 fields, found 3"
    e = InputError("d.csv", 5, "f1", "non-numeric value 'x'", count=37, examples=[5, 9, 12])
    assert str(e) == "d.csv:5: f1: non-numeric value 'x' (37 rows, first: 5, 9, 12)"
    assert (e.count, e.examples) == (37, [5, 9, 12])
    assert InputError("d.csv", 4, "a", "bad").examples == [4]
    assert str(InputError("d.csv", 1, "a\nb", "odd\nname")) == "d.csv:1: a b: odd name"
    again = pickle.loads(pickle.dumps(e))
    assert str(again) == str(e) and again.examples == [5, 9, 12]


# --------------------------------------------------------------------------- paths


def test_resolve_missing_path(tmp_path):
    p = str(tmp_path / "nope.csv")
    e = error_of(p)
    assert str(e) == f"{p}: no such file or directory"


def test_resolve_empty_directory_and_directory_without_csv(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    assert "directory is empty" in str(pytest.raises(InputError, resolve_csv_files, str(d)).value)
    write(d / "notes.txt", "x")
    write(d / "data.CSV", "a\n1\n")
    e = pytest.raises(InputError, resolve_csv_files, str(d)).value
    assert str(e) == f"{d}: directory has no *.csv files (found: data.CSV, notes.txt)"


def test_resolve_non_regular_file(tmp_path):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    e = pytest.raises(InputError, resolve_csv_files, str(fifo)).value
    assert str(e) == f"{fifo}: not a regular file or directory"


def test_resolve_directory_lists_csv_files_sorted_not_recursive(tmp_path):
    for name in ["b.csv", "a.csv", "c.txt", "sub/d.csv"]:
        write(tmp_path / name, HEADER + "1,2,3,0\n")
    assert resolve_csv_files(str(tmp_path)) == [str(tmp_path / "a.csv"), str(tmp_path / "b.csv")]
    assert resolve_csv_files(str(tmp_path / "a.csv")) == [str(tmp_path / "a.csv")]


# --------------------------------------------------------------------------- file & header


def test_empty_file(tmp_path):
    p = write(tmp_path / "d.csv", "")
    e = error_of(p)
    assert_one_line(e, p)
    assert "file is empty (0 bytes)" in str(e)


def test_header_only(tmp_path, engine):
    p = write(tmp_path / "d.csv", HEADER + "\n\n")
    e = error_of(p, label_column="label")
    assert str(e) == f"{p}: no data rows (the file has only a header)"


def test_duplicate_column_names(tmp_path):
    p = write(tmp_path / "d.csv", "a,b,a\n1,2,3\n")
    e = error_of(p)
    assert str(e) == f"{p}:1: a: duplicate column name (columns 1 and 3)"


def test_blank_column_name(tmp_path):
    p = write(tmp_path / "d.csv", "a,,b\n1,2,3\n")
    e = error_of(p)
    assert str(e) == f"{p}:1: column 2 of 3 has a blank name"


def test_space_padded_and_quoted_column_names(tmp_path):
    p = write(tmp_path / "d.csv", "a, b\n1,2\n")
    assert str(error_of(p)) == f"{p}:1: column name ' b' has leading/trailing spaces; remove them"
    p = write(tmp_path / "q.csv", '"a","b"\n1,2\n')
    e = error_of(p)
    assert_one_line(e, p, 1)
    assert "quoted column names are not supported" in str(e)


@pytest.mark.parametrize("sep,shown", [(";", "';'"), ("\t", "'\\t'"), ("|", "'|'")])
def test_the_delimiter_is_detected_and_a_wrong_one_named(tmp_path, sep, shown):
    p = write(tmp_path / "d.csv", sep.join(["a", "b", "label"]) + "\n" +
              sep.join(["1.5", "2", "0"]) + "\n")
    info = check_csv(p, label_column="label")
    assert (info.delimiter, info.delimiter_detected) == (sep, True)
    assert info.feature_columns == ("a", "b") and info.rows == 1
    e = error_of(p, label_column="label", delimiter=",")
    assert str(e) == (f"{p}:1: found 1 column with the delimiter ','; is it {shown}? pass "
                      f"--delimiter, or leave it out to detect it")


def test_a_european_file_with_decimal_commas_is_split_on_semicolons(tmp_path):
    p = write(tmp_path / "d.csv", "a;b;label\n1;2;0\n3;4;1\n")
    assert check_csv(p, label_column="label").delimiter == ";"
    # Decimal commas are not numbers: the column is named, with what to do.
    p = write(tmp_path / "e.csv", "a;b;label\n1,5;2;0\n3;4;1\n")
    assert "b" not in str(error_of(p, label_column="label")).split(":")[2]


def test_delimiter_guessed_from_data_when_header_has_one_name(tmp_path):
    p = write(tmp_path / "d.csv", "a\n1;2\n")
    assert str(error_of(p)) == (f"{p}:1: found 1 column with the delimiter ','; is it ';'? "
                                f"pass --delimiter, or leave it out to detect it")


def test_single_column_file_is_fine(tmp_path, engine):
    p = write(tmp_path / "d.csv", "a\n1\n2\n")
    assert check_csv(p).feature_columns == ("a",)


def test_non_utf8_header_bom_and_binary(tmp_path):
    p = write(tmp_path / "latin.csv", "caf\xe9,b\n1,2\n".encode("latin-1"))
    e = error_of(p)
    assert str(e) == f"{p}:1: not valid UTF-8 (byte 0xe9 at position 4); save the file as UTF-8"
    p = write(tmp_path / "bom.csv", b"\xef\xbb\xbfa,b\r\n1,2\r\n")
    info = check_csv(p)  # Excel's "CSV UTF-8": a byte-order mark and CRLF, accepted
    assert info.bom and info.columns == ("a", "b") and read_header(p) == ["a", "b"]
    p = write(tmp_path / "u16.csv", "a,b\n1,2\n".encode("utf-16"))
    assert str(error_of(p)) == f"{p}:1: file is UTF-16 encoded; save it as UTF-8"
    p = write(tmp_path / "x.csv", b"PK\x03\x04\x00\x00garbage")
    assert "ZIP archive" in str(error_of(p))
    p = write(tmp_path / "nul.csv", b"a,\x00b\n1,2\n")
    assert "NUL bytes" in str(error_of(p))


def test_read_header(tmp_path):
    p = write(tmp_path / "d.csv", "a,b,label\r\n1,2,0\r\n")
    assert read_header(p) == ["a", "b", "label"]
    assert read_header(str(tmp_path)) == ["a", "b", "label"]
    with pytest.raises(InputError):
        read_header(str(tmp_path / "missing.csv"))


def test_label_column_absent_lists_available_columns(tmp_path):
    p = write(tmp_path / "d.csv", "a,b,y\n1,2,0\n")
    e = error_of(p, label_column="label")
    assert str(e) == f"{p}:1: label: label column not found; available columns: 'a', 'b', 'y'"


def test_only_a_label_column(tmp_path):
    p = write(tmp_path / "d.csv", "label\n0\n")
    assert "no feature columns" in str(error_of(p, label_column="label"))


def test_expected_features_missing_and_extra(tmp_path):
    p = write(tmp_path / "d.csv", "a,c,z,label\n1,2,3,0\n")
    e = error_of(p, label_column="label", expected_features=["a", "b", "c"], mode="score")
    assert str(e) == (f"{p}:1: columns do not match the model's features: missing 1 column(s) "
                      f"the model expects: 'b'; 1 column(s) the model does not know: 'z'")


def test_expected_features_any_order_label_optional(tmp_path, engine):
    p = write(tmp_path / "d.csv", "c,label,a,b\n3,1,1,2\n")
    info = check_csv(p, label_column="label", expected_features=["a", "b", "c"], mode="score")
    assert info.feature_columns == ("c", "a", "b") and info.columns == ("c", "label", "a", "b")
    p = write(tmp_path / "nolabel.csv", "b,a,c\n1,2,3\n")
    assert check_csv(p, expected_features=["a", "b", "c"], mode="score").rows == 1
    # The label is an extra column unless it is declared as the label.
    p = write(tmp_path / "undeclared.csv", "a,b,c,label\n1,2,3,0\n")
    assert "does not know: 'label'" in str(error_of(p, expected_features=["a", "b", "c"]))


# --------------------------------------------------------------------------- rows


def test_valid_file_and_number_formats(tmp_path, engine):
    p = write(tmp_path / "d.csv", HEADER +
              "1e-3, 2.5 ,+3,0\r\n"
              "-0,.5,5.,1\r\n"
              "\r\n"                       # blank lines are skipped
              '"1.5",1E3,-7e+02, 1 \r\n'
              "12345678901234567890.5,0.0,3,1.0\r\n")
    info = check_csv(p, label_column="label")
    assert isinstance(info, CsvInfo)
    assert (info.rows, info.file_rows, info.files) == (4, (4,), (p,))
    assert info.columns == ("a", "b", "c", "label")
    assert info.feature_columns == ("a", "b", "c") and info.label_column == "label"
    assert (info.quarantined_rows, info.quarantine_file) == (0, None)
    assert info.clean_files == (p,) and info.clean_path == p and info.clean_rows == 4


def test_non_utf8_data_row(tmp_path, engine):
    p = write(tmp_path / "d.csv", HEADER.encode() + b"1,2,3,0\n1,2,3,0\n1,\xff2,3,0\n")
    e = error_of(p, label_column="label")
    assert str(e) == f"{p}:4: not valid UTF-8 (byte 0xff at position 3); save the file as UTF-8"


def test_ragged_rows(tmp_path, engine):
    p = write(tmp_path / "d.csv", HEADER + "1,2,3,0\n1,2,0\n1,2,3,0\n1,2,3,4,0\n1,2,3\n")
    e = error_of(p, label_column="label")
    text = assert_one_line(e, p, 3)
    assert text == f"{p}:3: expected 4 fields, found 3 (3 rows, first: 3, 5, 6)"
    assert (e.count, e.examples) == (3, [3, 5, 6])


def test_ragged_row_with_other_delimiter_gets_a_hint(tmp_path, engine):
    p = write(tmp_path / "d.csv", HEADER + "1,2,3,0\n1;2;3;0\n")
    assert str(error_of(p)) == f"{p}:3: expected 4 fields, found 1; is the delimiter ';'? " \
                               f"pass --delimiter"


def test_non_numeric_value(tmp_path, engine):
    long = "x" * 100
    p = write(tmp_path / "d.csv", HEADER + "1,2,3,0\n1,abc,3,0\n1,2,3,0\n4,5,1_000,1\n" +
              f"{long},2,3,0\n")
    e = error_of(p, label_column="label")
    # Every column that cannot be read as numbers, in one line, with what to do.
    assert str(e) == (f"{p}:3: 3 columns cannot be read as numbers: b (row 3: 'abc'), "
                      f"c (row 5: '1_000'), a (row 6: '{'x' * 37}...'){NUMBERS_HINT} "
                      f"(3 rows, first: 3, 5, 6)")
    assert e.count == 3
    p = write(tmp_path / "one.csv", HEADER + "1,2,3,0\n1,abc,3,0\n1,x,3,0\n")
    e = error_of(p, label_column="label")
    assert str(e) == f"{p}:3: b: non-numeric value 'abc'{NUMBERS_HINT} (2 rows, first: 3, 4)"
    assert e.column == "b" and e.count == 2


def test_big_integers_are_numbers(tmp_path, engine):
    p = write(tmp_path / "d.csv", HEADER + "1,2,3,0\n1,99999999999999999999,3,0\n")
    assert check_csv(p, label_column="label").rows == 2


@pytest.mark.parametrize("mode,qdir", [("score", False), ("train", False), ("score", True)])
def test_non_finite_values_are_errors_without_quarantine(tmp_path, engine, mode, qdir):
    p = write(tmp_path / "d.csv", HEADER + "1,2,3,0\n1,inf,3,0\nnan,2,3,0\n1,2,-Infinity,1\n"
              "1,2,1e999,0\n")
    e = error_of(p, label_column="label", mode=mode, missing="impute",
                 quarantine_dir=str(tmp_path / "q") if qdir else None)
    # nan is a missing value (imputed); infinities are errors without quarantine.
    assert str(e) == f"{p}:3: b: infinite value 'inf' (3 rows, first: 3, 5, 6)"
    assert not (tmp_path / "q").exists()


def test_empty_cells_are_errors_without_quarantine(tmp_path, engine):
    p = write(tmp_path / "d.csv", HEADER + "1,2,3,0\n1,,3,0\n1,2,NA,0\n1,2, ,1\n")
    e = error_of(p, label_column="label", mode="score")
    assert str(e) == f"{p}:3: b: missing value (empty cell) (3 rows, first: 3, 4, 5)"


def test_label_must_be_0_or_1(tmp_path, engine):
    p = write(tmp_path / "d.csv", HEADER + "1,2,3,0\n1,2,3,2\n1,2,3,yes\n1,2,3,1\n")
    e = error_of(p, label_column="label")
    assert str(e) == f"{p}:3: label: label must be 0 or 1, found '2' (2 rows, first: 3, 4)"


def test_empty_label_is_an_error_even_with_quarantine(tmp_path, engine):
    p = write(tmp_path / "d.csv", HEADER + "1,2,3,0\n1,2,3,1\n1,2,3,\n1,2,3,0\n")
    e = error_of(p, label_column="label", quarantine_dir=str(tmp_path / "q"))
    assert str(e) == f"{p}:4: label: empty label; expected 0 or 1"
    assert not (tmp_path / "q").exists()


def test_first_problem_class_in_file_order_is_raised(tmp_path, engine):
    # a ragged row (line 5) and non-numeric values (lines 3 and 6): the
    # non-numeric class shows up first, and is reported with its total count.
    p = write(tmp_path / "d.csv", HEADER + "1,2,3,0\n1,x,3,0\n1,2,3,0\n1,2,3\n1,y,3,0\n")
    e = error_of(p, label_column="label")
    assert str(e) == f"{p}:3: b: non-numeric value 'x'{NUMBERS_HINT} (2 rows, first: 3, 6)"


def test_examples_stop_at_five_and_count_is_total(tmp_path, engine):
    p = write(tmp_path / "d.csv", HEADER + "1,2,3,0\n" + "1,?,3,0\n" * 37)
    e = error_of(p, label_column="label")
    assert (e.count, e.examples) == (37, [3, 4, 5, 6, 7])
    assert str(e).endswith("(37 rows, first: 3, 4, 5, 6, 7)")


def test_quoted_values_and_multiline_records(tmp_path, engine):
    p = write(tmp_path / "d.csv", HEADER + '"1",2,3,0\n1,"2\n",3,1\n1,2,3,0\n1,"x\ny",3,0\n')
    e = error_of(p, label_column="label")
    # records: line 2, lines 3-4, line 5, lines 6-7 (reported at its first line)
    assert str(e) == f"{p}:6: b: non-numeric value 'x\\ny'{NUMBERS_HINT}"


def test_unbalanced_quote(tmp_path, engine):
    p = write(tmp_path / "d.csv", HEADER + '1,2,3,0\n1,"2,3,0\n1,2,3,0\n')
    e = error_of(p, label_column="label")
    assert_one_line(e, p, 3)
    assert "unbalanced double quote" in str(e)


def test_mixed_line_endings(tmp_path, engine):
    # pyarrow would split on the lone '\r'; TFX reads lines split on '\n' only.
    p = write(tmp_path / "d.csv", HEADER + "1,2,3,0\r\n1,2,3,0\r1,2,3,1\n")
    e = error_of(p, label_column="label")
    assert_one_line(e, p, 3)
    assert "carriage return" in str(e)
    p = write(tmp_path / "mac.csv", HEADER.replace("\n", "\r") + "1,2,3,0\r")
    assert "old Mac line endings" in str(error_of(p))


def test_compressed_file(tmp_path):
    import gzip
    p = write(tmp_path / "d.csv", gzip.compress((HEADER + "1,2,3,0\n").encode()))
    assert str(error_of(p)) == f"{p}:1: file is gzip-compressed; decompress it first"


def test_unbalanced_quote_does_not_swallow_the_rest_of_a_big_file(tmp_path, engine):
    p = write(tmp_path / "d.csv", HEADER + '1,"2,3,0\n' + "1,2,3,0\n" * 5000)
    e = error_of(p, label_column="label")
    assert_one_line(e, p, 2)
    assert "unbalanced double quote" in str(e)


# --------------------------------------------------------------------------- quarantine


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_quarantine_writes_rows_and_clean_copy(tmp_path, engine):
    body = ("1,2,3,0\n"
            "1,,3,0\n"        # line 3: missing
            "4,5,6,1\n"
            "inf,5,NA,0\n"    # line 5: non-finite and missing
            '7,"8",9,0\n'
            "\n"
            "1,2,nan,1\n")    # line 8: non-finite
    p = write(tmp_path / "data.csv", HEADER + body)
    q = tmp_path / "out" / "quarantine"
    info = check_csv(p, label_column="label", mode="train", quarantine_dir=str(q))
    assert (info.rows, info.quarantined_rows, info.clean_rows) == (6, 3, 3)
    # `nan` is an empty cell spelled out (missing); only infinities are non-finite
    assert info.quarantined_by_problem == (("missing", 3), ("non_finite", 1))
    assert info.quarantine_examples == ((p, 3), (p, 5), (p, 8))
    assert info.quarantine_file == str(q / "quarantined.csv")
    assert info.clean_files == (str(q / "clean" / "data.csv"),)
    assert info.clean_path == info.clean_files[0]
    assert read_rows(q / "quarantined.csv") == [
        ["a", "b", "c", "label", "_source_line"],
        ["1", "", "3", "0", "3"],
        ["inf", "5", "NA", "0", "5"],
        ["1", "2", "nan", "1", "8"],
    ]
    # the clean copy keeps the remaining lines byte for byte
    assert (q / "clean" / "data.csv").read_text() == \
        HEADER + "1,2,3,0\n4,5,6,1\n" + '7,"8",9,0\n'
    # and passes the checks itself, with nothing left to quarantine
    again = check_csv(info.clean_files[0], label_column="label")
    assert again.rows == 3


def test_quarantine_nothing_to_do_writes_nothing_and_removes_stale_output(tmp_path, engine):
    p = write(tmp_path / "data.csv", HEADER + "1,2,3,0\n4,5,6,1\n")
    q = tmp_path / "q"
    write(q / "clean" / "old.csv", "stale")
    write(q / "quarantined.csv", "stale")
    info = check_csv(p, label_column="label", quarantine_dir=str(q))
    assert info.clean_files == (p,) and info.quarantine_file is None
    assert info.quarantined_rows == 0
    assert not (q / "quarantined.csv").exists() and not (q / "clean" / "old.csv").exists()
    assert not (tmp_path / "q2").exists()
    check_csv(p, quarantine_dir=str(tmp_path / "q2"))
    assert not (tmp_path / "q2").exists()


def test_quarantine_more_than_half_is_an_error(tmp_path, engine):
    p = write(tmp_path / "d.csv", HEADER + "1,,3,0\n1,2,3,0\n1,,3,0\n,2,3,0\n")
    q = tmp_path / "q"
    e = error_of(p, label_column="label", quarantine_dir=str(q))
    assert str(e) == (f"{p}:2: b: missing value (empty cell); 3 of 4 rows (75%) have missing "
                      f"or non-finite values, more than the 50% that may be quarantined; fix "
                      f"the data (3 rows, first: 2, 4, 5)")
    assert not q.exists()
    # exactly half is still fine
    p = write(tmp_path / "half.csv", HEADER + "1,,3,0\n1,2,3,0\n1,,3,0\n1,2,3,0\n")
    assert check_csv(p, label_column="label", quarantine_dir=str(q)).quarantined_rows == 2


def test_quarantine_does_not_hide_fatal_problems(tmp_path, engine):
    p = write(tmp_path / "d.csv", HEADER + "1,,3,0\n1,2,3,0\n1,abc,3,0\n")
    q = tmp_path / "q"
    e = error_of(p, label_column="label", quarantine_dir=str(q))
    assert str(e) == f"{p}:4: b: non-numeric value 'abc'{NUMBERS_HINT}"
    assert not q.exists()


def test_quarantine_refuses_its_own_output_as_input(tmp_path):
    q = tmp_path / "q"
    p = write(q / "clean" / "d.csv", HEADER + "1,,3,0\n1,2,3,0\n1,2,3,0\n")
    e = error_of(p, quarantine_dir=str(q))
    assert "output of a previous check" in str(e)
    assert os.path.exists(p)


# --------------------------------------------------------------------------- directories


def test_directory_with_mismatched_headers(tmp_path):
    write(tmp_path / "a.csv", HEADER + "1,2,3,0\n")
    b = write(tmp_path / "b.csv", "a,b,d,label\n1,2,3,0\n")
    e = error_of(str(tmp_path), label_column="label")
    assert str(e) == f"{b}:1: header differs from a.csv: missing 'c'; extra 'd'"
    write(tmp_path / "b.csv", "b,a,c,label\n1,2,3,0\n")
    assert str(error_of(str(tmp_path))) == \
        f"{b}:1: header differs from a.csv: same columns in a different order"


def test_directory_reports_the_file_at_fault(tmp_path, engine):
    write(tmp_path / "a.csv", HEADER + "1,2,3,0\n")
    b = write(tmp_path / "b.csv", HEADER + "1,2,3,0\n1,2,x,0\n")
    info_error = error_of(str(tmp_path), label_column="label")
    assert str(info_error) == f"{b}:3: c: non-numeric value 'x'{NUMBERS_HINT}"


def test_directory_quarantine_copies_every_file(tmp_path, engine):
    d = tmp_path / "data"
    a = write(d / "a.csv", HEADER + "1,2,3,0\n4,5,6,1\n")
    b = write(d / "b.csv", HEADER + "1,2,3,0\n1,2,,0\n4,5,6,1\n")
    q = tmp_path / "q"
    info = check_csv(str(d), label_column="label", quarantine_dir=str(q))
    assert info.files == (a, b) and info.file_rows == (2, 3) and info.rows == 5
    assert info.clean_files == (str(q / "clean" / "a.csv"), str(q / "clean" / "b.csv"))
    assert info.clean_path == str(q / "clean")
    assert sorted(os.listdir(q / "clean")) == ["a.csv", "b.csv"]
    assert (q / "clean" / "a.csv").read_text() == HEADER + "1,2,3,0\n4,5,6,1\n"
    assert (q / "clean" / "b.csv").read_text() == HEADER + "1,2,3,0\n4,5,6,1\n"
    assert read_rows(q / "quarantined.csv") == [
        ["a", "b", "c", "label", "_source_line", "_source_file"],
        ["1", "2", "", "0", "3", "b.csv"],
    ]


# --------------------------------------------------------------------------- size


def _generate(path, rows, cols=20):
    """A numeric CSV with a 0/1 label, written in blocks (fast)."""
    rng = np.random.default_rng(0)
    header = ",".join([f"f{i}" for i in range(cols)] + ["label"]) + "\n"
    block = rng.normal(size=(1000, cols))
    lines = "".join(",".join(f"{v:.6f}" for v in r) + f",{i % 2}\n" for i, r in enumerate(block))
    with open(path, "w") as f:
        f.write(header)
        for _ in range(rows // 1000):
            f.write(lines)


def test_200k_rows_check_fast(tmp_path):
    p = str(tmp_path / "big.csv")
    started = time.perf_counter()
    _generate(p, 200_000)
    generated = time.perf_counter() - started

    started = time.perf_counter()
    info = check_csv(p, label_column="label", quarantine_dir=str(tmp_path / "q"))
    checked = time.perf_counter() - started
    assert info.rows == 200_000 and info.quarantined_rows == 0
    assert len(info.feature_columns) == 20

    # one bad cell near the end: found, with its line number
    with open(p, "a") as f:
        f.write(",".join(["1"] * 7 + ["oops"] + ["1"] * 12) + ",0\n")
    e = error_of(p, label_column="label")
    assert str(e) == f"{p}:200002: f7: non-numeric value 'oops'{NUMBERS_HINT}"
    print(f"\n200k x 20: generated in {generated:.2f}s, checked in {checked:.2f}s "
          f"({200_000 / checked:,.0f} rows/s)")


def test_200k_rows_quarantine_and_python_pass_agree(tmp_path, monkeypatch):
    p = str(tmp_path / "big.csv")
    _generate(p, 200_000)
    with open(p, "a") as f:
        f.write(",".join(["1"] * 19 + [""]) + ",0\n")  # line 200002
    fast = check_csv(p, label_column="label", quarantine_dir=str(tmp_path / "q1"))
    monkeypatch.setattr(check_module, "arrow_scan", lambda path, spec: None)
    slow = check_csv(p, label_column="label", quarantine_dir=str(tmp_path / "q2"))
    assert fast.quarantined_rows == slow.quarantined_rows == 1
    assert fast.quarantine_examples == slow.quarantine_examples == ((p, 200_002),)
    with open(fast.clean_files[0], "rb") as f1, open(slow.clean_files[0], "rb") as f2:
        assert f1.read() == f2.read()
    assert os.path.getsize(fast.clean_files[0]) < os.path.getsize(p)


def test_fast_and_exact_pass_disagreeing_falls_back_to_full_check(tmp_path, monkeypatch):
    # Should never happen; if the two readers count records differently, the
    # file is checked again row by row and the outputs rewritten, not doubled.
    p = write(tmp_path / "d.csv", HEADER + "1,,3,0\n1,2,3,0\n1,2,3,1\n")
    monkeypatch.setattr(check_module, "arrow_scan",
                        lambda path, spec: (4, np.array([0, 2], dtype=np.int64), {}))
    q = tmp_path / "q"
    info = check_csv(p, label_column="label", quarantine_dir=str(q))
    assert (info.rows, info.quarantined_rows) == (3, 1)
    assert read_rows(q / "quarantined.csv") == [["a", "b", "c", "label", "_source_line"],
                                                ["1", "", "3", "0", "2"]]
    assert (q / "clean" / "d.csv").read_text() == HEADER + "1,2,3,0\n1,2,3,1\n"


# --------------------------------------------------------------------------- mixed tables

MIXED = ColumnRoles(label="label", numeric=("amount", "n"), categorical=("shop",),
                    passthrough=("id", "ts"))
MIXED_HEADER = "id,ts,shop,amount,n,label\n"


def test_text_columns_take_any_text_and_numbers_stay_checked(tmp_path, engine):
    body = ('T1,2024-03-01T10:00:00Z,grocery,12.5,1,0\n'
            'T2,2024-03-01T11:00:00Z,"fuel, diesel",,2,0\n'      # empty amount: imputed
            'T3,,Ä-shop ✓,7,3,1\n'                               # empty timestamp: passthrough
            'T4,2024-03-02T09:00:00Z,,nan,4,0\n')                 # empty category, nan amount
    p = write(tmp_path / "m.csv", MIXED_HEADER + body)
    info = check_csv(p, label_column="label", roles=MIXED, missing="impute")
    assert info.rows == 4 and info.quarantined_rows == 0
    assert info.number_columns == ("amount", "n")
    assert dict(info.missing_by_column) == {"amount": 2}  # columns with empty cells
    bad = write(tmp_path / "bad.csv", MIXED_HEADER + body + "T5,2024-03-02,fuel,12,x,0\n")
    e = error_of(bad, label_column="label", roles=MIXED, missing="impute")
    assert str(e).startswith(f"{bad}:6: n: non-numeric value 'x'")


def test_every_non_numeric_number_column_is_named_in_one_error(tmp_path, engine):
    # a table of strings declared (or inferred) numeric: one run names them all
    p = write(tmp_path / "t.csv", "id,shop,amount,label\nT1,grocery,1,0\nT2,fuel,2,0\n")
    e = error_of(p, label_column="label")
    assert str(e).startswith(f"{p}:2: ")
    assert f"{p}:2: 2 columns cannot be read as numbers: id (row 2: 'T1', 2 rows), " \
           f"shop (row 2: 'grocery', 2 rows)" in str(e)
    assert "amount" not in str(e)
    assert str(e).endswith(f"{NUMBERS_HINT} (2 rows, first: 2, 3)")


def test_empty_number_cells_quarantined_when_asked(tmp_path, engine):
    p = write(tmp_path / "m.csv", MIXED_HEADER + "T1,,a,1,1,0\nT2,,b,,2,0\nT3,,a,3,3,1\n")
    q = tmp_path / "q"
    info = check_csv(p, label_column="label", roles=MIXED, missing="quarantine",
                     quarantine_dir=str(q))
    # the empty timestamps are text (passthrough): only the empty amount is set aside
    assert (info.rows, info.quarantined_rows) == (3, 1)
    assert info.quarantine_examples == ((p, 3),)


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_the_delimiter_is_detected_and_reported(tmp_path, engine, sep):
    text = (MIXED_HEADER + "T1,2024-03-01,a,1.5,1,0\nT2,2024-03-01,b,2,2,1\n").replace(",", sep)
    p = write(tmp_path / "d.csv", text)
    info = check_csv(p, label_column="label", roles=MIXED, missing="impute")
    assert info.delimiter == sep and info.delimiter_detected
    assert info.columns == ("id", "ts", "shop", "amount", "n", "label")
    # given explicitly, it is not "detected"
    info = check_csv(p, label_column="label", roles=MIXED, delimiter=sep)
    assert info.delimiter == sep and not info.delimiter_detected


def test_a_byte_order_mark_and_crlf_are_accepted(tmp_path, engine):
    text = "\ufeff" + (MIXED_HEADER + "T1,2024-03-01,a,1.5,1,0\n").replace("\n", "\r\n")
    p = write(tmp_path / "bom.csv", text.encode("utf-8"))
    info = check_csv(p, label_column="label", roles=MIXED)
    assert info.bom and info.columns[0] == "id" and info.rows == 1


def test_score_accepts_missing_optional_columns(tmp_path, engine):
    # at score time the passthrough columns (and the label) may be absent
    p = write(tmp_path / "s.csv", "amount,shop,n\n1,a,2\n,b,3\n")
    info = check_csv(p, mode="score", expected_features=["amount", "n", "shop"],
                     roles=MIXED, missing="impute", optional_columns=("id", "ts"))
    assert info.rows == 2 and dict(info.missing_by_column)["amount"] == 1
    p = write(tmp_path / "s2.csv", "amount,shop,n,id,extra\n1,a,2,T1,z\n")
    e = error_of(p, mode="score", expected_features=["amount", "n", "shop"], roles=MIXED,
                 optional_columns=("id", "ts"))
    assert "extra" in str(e)


def test_score_refuses_a_line_break_inside_a_value(tmp_path, engine):
    # batch scoring splits its input at line ends: a record must fit on a line
    p = write(tmp_path / "s.csv", 'id,shop,amount,n\nT1,a,1,2\nT2,"two\nlines",2,3\nT3,b,3,4\n')
    e = error_of(p, mode="score", expected_features=["amount", "n", "shop"], roles=MIXED,
                 optional_columns=("id", "ts"))
    assert str(e) == (f"{p}:3: a quoted value holds a line break (the record runs over lines "
                      f"3-4); score reads one record per line: remove the line breaks inside "
                      f"values")
    # training reads such records (as CsvExampleGen does)
    info = check_csv(p, roles=MIXED)
    assert info.rows == 3
