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
