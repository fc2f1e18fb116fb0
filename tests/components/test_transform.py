"""preprocessing_fn through TFT's real Beam implementation, against numpy."""
import tempfile

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from components.columns import transformed_name
from components.transform import preprocessing_fn


def _analyze_and_transform(rows, feature_spec, custom_config):
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(feature_spec))
    with tft_beam.Context(temp_dir=tempfile.mkdtemp(), force_tf_compat_v1=False):
        (transformed, _), _ = (
            (rows, metadata) | tft_beam.AnalyzeAndTransformDataset(
                lambda inputs: preprocessing_fn(inputs, custom_config)))
    return transformed


def test_every_feature_is_z_scored_and_the_label_passed_through():
    rng = np.random.default_rng(3)
    n = 200
    a = rng.normal(5.0, 2.0, n)
    b = rng.integers(0, 100, n)  # an integer column, as CsvExampleGen would type it
    labels = (rng.random(n) < 0.1).astype(np.int64)
    rows = [{"a": [float(a[i])], "b": [int(b[i])], "label": [int(labels[i])]} for i in range(n)]
    spec = {"a": tf.io.FixedLenFeature([1], tf.float32),
            "b": tf.io.FixedLenFeature([1], tf.int64),
            "label": tf.io.FixedLenFeature([1], tf.int64)}
    out = _analyze_and_transform(rows, spec, {"columns": {"label": "label"}})
    assert set(out[0]) == {transformed_name("a"), transformed_name("b"), "label"}
    got_a = np.array([r[transformed_name("a")] for r in out]).ravel()
    got_b = np.array([r[transformed_name("b")] for r in out]).ravel()
    # Population std, as sklearn's StandardScaler in the reference recipe.
    np.testing.assert_allclose(got_a, (a - a.mean()) / a.std(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got_b, (b - b.mean()) / b.std(), rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(np.array([r["label"] for r in out]).ravel(), labels)


def test_without_label_every_column_is_a_feature():
    rows = [{"x": [float(i)], "y": [float(i % 3)]} for i in range(30)]
    spec = {k: tf.io.FixedLenFeature([1], tf.float32) for k in ("x", "y")}
    out = _analyze_and_transform(rows, spec, None)
    assert set(out[0]) == {transformed_name("x"), transformed_name("y")}
    x = np.array([r[transformed_name("x")] for r in out]).ravel()
    assert abs(x.mean()) < 1e-5 and abs(x.std() - 1) < 1e-4


def test_mixed_columns_missing_values_categories_and_time_parts():
    """Roles of a real table through TFT's Beam implementation, against numpy/pandas."""
    import pandas as pd

    rng = np.random.default_rng(5)
    n = 300
    amount = rng.gamma(2.0, 30.0, n)
    amount_missing = rng.random(n) < 0.1
    # 'a' common, 'b' less, 'rare' 3 times (< min_frequency 5), some empty cells
    cats = rng.choice(["a", "b"], size=n, p=[0.7, 0.3]).astype(object)
    cats[[5, 50, 150]] = "rare"
    cats[rng.random(n) < 0.05] = ""
    hours = rng.integers(0, 24, n)
    days = rng.integers(1, 29, n)
    ts = [f"2024-02-{d:02d}T{h:02d}:30:00Z" for d, h in zip(days, hours)]
    rows = []
    for i in range(n):
        row = {"id": [f"T{i}".encode()], "ts": [ts[i].encode()], "label": [0]}
        row["amount"] = [] if amount_missing[i] else [float(amount[i])]
        row["cat"] = [] if cats[i] == "" else [cats[i].encode()]
        rows.append(row)
    spec = {"amount": tf.io.VarLenFeature(tf.float32), "cat": tf.io.VarLenFeature(tf.string),
            "ts": tf.io.VarLenFeature(tf.string), "id": tf.io.VarLenFeature(tf.string),
            "label": tf.io.FixedLenFeature([1], tf.int64)}
    roles = {"label": "label", "numeric": ["amount"], "categorical": ["cat"],
             "passthrough": ["id", "ts"], "time_features": ["ts"], "indicators": ["amount"],
             "max_categories": 10, "min_frequency": 5}
    out = _analyze_and_transform(rows, spec, {"columns": roles})
    from components.columns import indicator_name, time_part_name

    keys = {transformed_name("amount"), transformed_name(indicator_name("amount")),
            transformed_name("cat"), "label"} | {
        transformed_name(time_part_name("ts", p)) for p in
        ("hour_sin", "hour_cos", "weekday_sin", "weekday_cos")}
    assert set(out[0]) == keys  # passthrough ids never reach the model
    col = {k: np.array([np.asarray(r[k]).ravel()[0] for r in out]) for k in keys}
    present = amount[~amount_missing]
    want = np.where(amount_missing, 0.0, (amount - present.mean()) / present.std())
    np.testing.assert_allclose(col[transformed_name("amount")], want, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(col[transformed_name(indicator_name("amount"))],
                                  amount_missing.astype(np.float32))
    # vocabulary by frequency: a, b, then the missing category (if frequent
    # enough); 'rare' is below min_frequency: the one out-of-vocabulary index
    counts = pd.Series(np.where(cats == "", "__missing__", cats)).value_counts()
    vocab = [v for v, c in counts.items() if c >= 5]
    assert "rare" not in vocab and vocab[:2] == ["a", "b"]
    index = {v: i for i, v in enumerate(vocab)}
    want_idx = [index.get("__missing__" if c == "" else c, len(vocab)) for c in cats]
    np.testing.assert_array_equal(col[transformed_name("cat")], want_idx)
    weekday = pd.to_datetime(pd.Series(ts)).dt.weekday.to_numpy()  # Monday = 0
    hour = hours + 0.5
    np.testing.assert_allclose(col[transformed_name(time_part_name("ts", "hour_sin"))],
                               np.sin(2 * np.pi * hour / 24), atol=1e-5)
    np.testing.assert_allclose(col[transformed_name(time_part_name("ts", "weekday_cos"))],
                               np.cos(2 * np.pi * weekday / 7), atol=1e-5)


def test_time_parts_of_dates_offsets_and_garbage():
    from components.transform import time_parts

    parts = time_parts(tf.constant(["2024-03-04T06:00:00+02:00", "2024-03-05", "", "junk",
                                    "2024-03-10 18:00"]))
    hour_sin = parts["hour_sin"].numpy()
    weekday_sin = parts["weekday_sin"].numpy()
    # local time as written; a date alone has no hour; empty / unreadable: 0
    np.testing.assert_allclose(hour_sin, [np.sin(2 * np.pi * 6 / 24), 0, 0, 0,
                                          np.sin(2 * np.pi * 18 / 24)], atol=1e-6)
    # 2024-03-04 is a Monday (0), 03-05 Tuesday (1), 03-10 Sunday (6)
    np.testing.assert_allclose(weekday_sin, [0, np.sin(2 * np.pi / 7), 0, 0,
                                             np.sin(2 * np.pi * 6 / 7)], atol=1e-6)
    assert parts["weekday_cos"].numpy()[2] == 0 and parts["weekday_cos"].numpy()[0] == 1
