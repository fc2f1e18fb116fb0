"""bench/mixed_tables.py: the user-shaped tables of `make bench-quality`'s mixed variant.

Fast: pandas and numpy only, no pipeline run.
"""
import io

import numpy as np
import pandas as pd
import pytest

from bench.mixed_tables import (BIN_LABELS, BIN_SUFFIX, ID_COLUMN, LABEL, NOISE_COLUMN,
                                NOISE_VALUES, PARTS, TIME_COLUMN, fit_spec, to_user_table)


def _frame(rows=2000, seed=0):
    """f0..f9: f0-f2 few distinct values (f2 non-integer), f3-f9 continuous; f4 and f5
    separate the anomalies, so they are the informative ones."""
    rng = np.random.default_rng(seed)
    y = (rng.random(rows) < 0.1).astype(int)
    df = pd.DataFrame({
        "f0": rng.integers(1, 11, rows).astype(float),
        "f1": rng.integers(0, 3, rows),
        "f2": rng.choice([-0.2036404856, 0.5, 1.75], rows),
        **{f"f{i}": rng.normal(size=rows) for i in range(3, 10)}})
    df["f4"] += 3 * y
    df["f5"] -= 2 * y
    df[LABEL] = y
    return df


@pytest.fixture(scope="module")
def frame():
    return _frame()


@pytest.fixture(scope="module")
def table(frame):
    return to_user_table(frame, seed=0)


def test_id_and_time_come_first_label_last(table):
    assert list(table.columns[:2]) == [ID_COLUMN, TIME_COLUMN]
    assert table.columns[-1] == LABEL
    assert table[ID_COLUMN].is_unique and table[ID_COLUMN].notna().all()
    assert table[ID_COLUMN].str.fullmatch(r"r-\d{6}").all()
    times = pd.to_datetime(table[TIME_COLUMN], format="%Y-%m-%dT%H:%M:%SZ")
    assert table[TIME_COLUMN].str.endswith("Z").all() and times.is_monotonic_increasing


def test_the_three_kinds_of_categorical_column(frame, table):
    spec = fit_spec(frame, 0)
    # (a) up to 3 of the few-valued columns, as "v_<value>", one-to-one.
    assert 1 <= len(spec.coded) <= 3 and set(spec.coded) <= {"f0", "f1", "f2"}
    for c in spec.coded:
        present = table[c].notna()
        assert table.loc[present, c].str.startswith("v_").all()
        pairs = pd.DataFrame({"v": frame.loc[present, c], "t": table.loc[present, c]})
        assert (pairs.groupby("v")["t"].nunique() == 1).all()
        assert (pairs.groupby("t")["v"].nunique() == 1).all()
    # (b) 2 informative continuous columns (7 continuous ones: >= 8 gives 2, else 1),
    # replaced by their low/mid/high bins.
    assert list(spec.binned) == ["f4"] or list(spec.binned) == ["f5"]
    for c in spec.binned:
        assert c not in table.columns and c + BIN_SUFFIX in table.columns
        assert set(table[c + BIN_SUFFIX].dropna()) == set(BIN_LABELS)
        shares = table[c + BIN_SUFFIX].value_counts(normalize=True)
        assert shares.between(0.28, 0.38).all()
    # (c) the noise column.
    assert set(table[NOISE_COLUMN].dropna()) == set(NOISE_VALUES)
    # The rest stay numbers.
    rest = [c for c in frame.columns if c != LABEL and c not in spec.coded and c not in spec.binned]
    assert all(pd.api.types.is_float_dtype(table[c]) for c in rest)


def test_two_bins_when_there_are_eight_continuous_columns():
    df = _frame()
    df.insert(10, "f10", np.random.default_rng(1).normal(size=len(df)) + 2 * df[LABEL])
    assert len(fit_spec(df, 0).binned) == 2


def test_about_ten_percent_of_rows_have_an_empty_cell(frame, table):
    spec = fit_spec(frame, 0)
    empty = table.isna()
    share = empty.any(axis=1).mean()
    assert 0.08 <= share <= 0.12
    assert not empty[[ID_COLUMN, TIME_COLUMN, LABEL]].any().any()
    categorical = list(spec.coded) + [c + BIN_SUFFIX for c in spec.binned] + [NOISE_COLUMN]
    numeric = [c for c in table.columns if c not in categorical
               and c not in (ID_COLUMN, TIME_COLUMN, LABEL)]
    per_row = empty[numeric].sum(axis=1)
    assert per_row.max() == 1 and (per_row == 1).sum() == empty.any(axis=1).sum()
    cat_rows = empty[categorical].any(axis=1)
    assert 0.2 * per_row.sum() <= cat_rows.sum() <= 0.4 * per_row.sum()
    # Written as empty cells.
    text = io.StringIO()
    table.to_csv(text, index=False)
    assert ",," in text.getvalue()


def test_label_unchanged_and_rows_in_input_order(frame, table):
    assert table[LABEL].tolist() == frame[LABEL].tolist()
    assert (table.index == frame.index).all()
    assert len(table) == len(frame)


def test_deterministic_per_seed(frame, table):
    pd.testing.assert_frame_equal(to_user_table(frame, 0), table)
    other = to_user_table(frame, 1)
    assert not other.drop(columns=[ID_COLUMN, LABEL]).equals(
        table.drop(columns=[ID_COLUMN, LABEL]))


def test_a_split_keeps_ids_and_categories_consistent(frame, table):
    """Parts converted with the train part's spec: ids are the source rows, categories
    and bins the same, and a row is treated the same whichever part it is in."""
    shuffled = frame.sample(frac=1.0, random_state=3)
    train, test = shuffled.iloc[:1400], shuffled.iloc[1400:]
    spec = fit_spec(train, 0)
    a, b = to_user_table(train, 0, spec), to_user_table(test, 0, spec)
    assert set(a[ID_COLUMN]).isdisjoint(b[ID_COLUMN])
    assert a[ID_COLUMN].tolist() == [f"r-{i:06d}" for i in train.index]
    assert list(a.columns) == list(b.columns)
    for c in list(spec.coded) + [c + BIN_SUFFIX for c in spec.binned]:
        assert set(b[c].dropna()) <= set(a[c].dropna())
    whole = to_user_table(frame, 0, spec)
    pd.testing.assert_frame_equal(pd.concat([a, b]), whole.loc[shuffled.index])


def test_parts_switch_off():
    frame = _frame(500)
    plain = to_user_table(frame, 0, fit_spec(frame, 0, parts=()))
    assert list(plain.columns) == [ID_COLUMN, TIME_COLUMN] + list(frame.columns)
    assert not plain.isna().any().any()
    only_missing = to_user_table(frame, 0, fit_spec(frame, 0, parts=("missing",)))
    assert only_missing.isna().any(axis=1).mean() > 0.05
    assert set(fit_spec(frame, 0).parts) == set(PARTS)
    with pytest.raises(ValueError):
        fit_spec(frame, 0, parts=("bogus",))
