"""Column roles (components/columns.py) from a profile of the data (input_checks/profile.py).

Checked: each stated rule on the column shapes real tables have (amounts,
counts, string categories, integer and string ids, ISO timestamps, free
text, empty cells), the overrides and their errors, the missing-indicators,
and that the roles survive their JSON trip to the components.
"""
import json

import numpy as np
import pytest

from components.columns import (ColumnProfile, ColumnRoles, ColumnSettings, infer_roles,
                                with_indicators)
from components.input_checks.profile import profile_csv
from components.settings import SettingsError

ROWS = 400


def _table(tmp_path, sep=","):
    rng = np.random.default_rng(0)
    lines = [sep.join(["txn_id", "customer", "ts", "amount", "n_items", "merchant", "country",
                       "note", "mostly_numbers", "label"])]
    for i in range(ROWS):
        amount = "" if i % 10 == 0 else f"{rng.gamma(2, 30):.2f}"
        ts = f"2024-03-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z"
        lines.append(sep.join([
            str(100000 + i),                           # integer id
            f"C{i:05d}",                               # string id
            ts,                                        # timestamp
            amount,                                    # numbers with empty cells
            str(int(rng.integers(1, 6))),              # small integers: a count
            f"m{int(rng.integers(0, 12))}",            # 12 categories
            ["DE", "FR", "US", ""][i % 4],             # categories with empty cells
            f"free text {rng.integers(0, 10**6)}",      # many distinct strings, not all
            "?" if i == 7 else str(i % 13),          # numbers with one odd cell
            str(int(i % 50 == 0)),
        ]))
    path = tmp_path / "t.csv"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_rules_on_a_transactions_like_table(tmp_path):
    path = _table(tmp_path)
    profiles = profile_csv([path], 100_000, ",")
    assert profiles["amount"].non_empty == ROWS - ROWS // 10
    assert profiles["country"].distinct == 3  # empty cells are not a value here
    roles = infer_roles(list(profiles), "label", ColumnSettings(), profiles)
    assert roles.numeric == ("amount", "n_items", "mostly_numbers")
    assert roles.categorical == ("merchant", "country")
    assert roles.passthrough == ("txn_id", "customer", "ts", "note")
    assert roles.label == "label"
    why = roles.why
    assert why["txn_id"] == "passthrough: integer identifier: 400 distinct values in 400 rows"
    assert why["customer"] == "passthrough: identifier: 400 distinct values in 400 rows"
    assert why["ts"].startswith("passthrough: date/time values")
    assert why["merchant"] == "categorical: 12 distinct values in 400 rows " \
                              "(<= columns.max_categories=50)"
    assert why["mostly_numbers"] == "numeric: numbers (1 non-numeric cell, reported as errors)"
    assert why["note"].startswith("passthrough: identifier") or "max_categories" in why["note"]
    assert why["label"] == "label: --label-column"
    # every feature column has exactly one role, and a reason
    assert sorted(roles.numeric + roles.categorical + roles.passthrough + ("label",)) == \
        sorted(profiles)
    assert set(why) == set(profiles)


def test_semicolon_files_profile_the_same(tmp_path):
    a = profile_csv([_table(tmp_path)], 100_000, ",")
    (tmp_path / "s").mkdir()
    b = profile_csv([_table(tmp_path / "s", sep=";")], 100_000, ";")
    assert a == b


def test_the_sample_is_the_first_rows(tmp_path):
    profiles = profile_csv([_table(tmp_path)], 100, ",")
    assert profiles["txn_id"].non_empty == 100 and profiles["txn_id"].distinct == 100


def test_many_distinct_strings_are_passthrough_with_a_hint():
    s = ColumnSettings(max_categories=10, min_id_rows=20)
    p = {"city": ColumnProfile("city", non_empty=1000, distinct=300),
         "x": ColumnProfile("x", non_empty=1000, distinct=900, numeric=1000)}
    roles = infer_roles(["city", "x"], None, s, p)
    assert roles.passthrough == ("city",) and roles.numeric == ("x",)
    assert "--categorical-columns makes it categorical" in roles.why["city"]
    # floats that are all distinct are measurements, not ids
    p["x"] = ColumnProfile("x", non_empty=1000, distinct=1000, numeric=1000, integer=0)
    assert infer_roles(["city", "x"], None, s, p).numeric == ("x",)


def test_small_tables_never_call_a_column_an_id():
    p = {"k": ColumnProfile("k", non_empty=10, distinct=10, numeric=10, integer=10)}
    assert infer_roles(["k"], None, ColumnSettings(), p).numeric == ("k",)


def test_an_empty_column_is_passthrough():
    p = {"x": ColumnProfile("x", non_empty=100, distinct=50, numeric=100),
         "blank": ColumnProfile("blank")}
    roles = infer_roles(["x", "blank"], None, ColumnSettings(), p)
    assert roles.passthrough == ("blank",) and "no values" in roles.why["blank"]


def test_overrides_win_and_are_named_in_why(tmp_path):
    path = _table(tmp_path)
    profiles = profile_csv([path], 100_000, ",")
    s = ColumnSettings(categorical=("n_items",), passthrough=("country",), numeric=("txn_id",),
                       time_features=("ts",))
    roles = infer_roles(list(profiles), "label", s, profiles)
    assert "n_items" in roles.categorical and "country" in roles.passthrough
    assert "txn_id" in roles.numeric and roles.time_features == ("ts",)
    assert roles.why["n_items"] == "categorical: --categorical-columns"
    assert roles.why["ts"].endswith("(--time-features)")
    assert roles.feature_keys(profiles)[-1] == "ts"  # a model input through its time parts


@pytest.mark.parametrize("settings,message", [
    (ColumnSettings(categorical=("nope",)), "--categorical-columns names 'nope'"),
    (ColumnSettings(passthrough=("label",)), "--passthrough-columns names 'label'"),
    (ColumnSettings(time_features=("amount",)), "--time-features amount: 360 of its values"),
    (ColumnSettings(numeric=("ts",), time_features=("ts",)),
     "--time-features ts: the column is declared numeric"),
    (ColumnSettings(passthrough=("amount", "n_items", "mostly_numbers", "merchant", "country")),
     "no model input: every column is passthrough or the label"),
])
def test_override_errors_name_the_column(tmp_path, settings, message):
    profiles = profile_csv([_table(tmp_path)], 100_000, ",")
    with pytest.raises(SettingsError) as e:
        infer_roles(list(profiles), "label", settings, profiles)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_settings_problems():
    assert ColumnSettings().problems() == []
    bad = ColumnSettings(max_categories=1, missing="drop", numeric=("a",), categorical=("a",))
    problems = bad.problems()
    assert "columns.max_categories must be >= 2" in problems
    assert "columns.missing must be one of impute, quarantine" in problems
    assert "columns: a is listed as both numeric and categorical" in problems


def test_indicators_for_numeric_columns_with_empty_cells_only():
    roles = ColumnRoles(label="y", numeric=("a", "b"), categorical=("c",),
                        why={"a": "numeric: numbers", "b": "numeric: numbers"})
    out = with_indicators(roles, {"a": 12, "b": 0, "c": 40})
    assert out.indicators == ("a",)
    assert out.why["a"] == "numeric: numbers; 12 empty cells: imputed, with a missing-indicator " \
                           "input"
    assert with_indicators(out, {}).indicators == ("a",)  # kept once set


def test_roles_survive_the_json_trip_and_old_configs_mean_all_numeric():
    roles = ColumnRoles(label="y", numeric=("a",), categorical=("c",), passthrough=("id",),
                        time_features=("id",), indicators=("a",), max_categories=7,
                        min_frequency=2, why={"a": "numeric: numbers"})
    assert ColumnRoles.from_dict(json.loads(json.dumps(roles.to_dict()))) == roles
    old = ColumnRoles.from_dict(None)
    assert not old.has_roles
    assert old.numeric_keys(["b", "a", "label"]) == ["a", "b", "label"]
    assert ColumnRoles(label="label").numeric_keys(["b", "a", "label"]) == ["a", "b"]
    assert roles.summary()["passthrough"] == ["id"]
