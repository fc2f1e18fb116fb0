"""The exported SavedModel (components/model/export.py), without the DAG.

tests/helpers/savedmodels.py builds a real SavedModel with the production
export code (a fixed z-score layer stands in for TFT's). Checked: the
signatures agree with each other and with numpy; the Evaluator's threshold
write changes the threshold and nothing else; the export does not carry the
training machinery.
"""
import json
import os

import numpy as np
import tensorflow as tf

from components.model import export, layout
from tests.helpers.savedmodels import make_rows, make_saved_model

FEATURES = ["a", "b", "c", "d"]


def _example(row):
    return tf.train.Example(features=tf.train.Features(feature={
        k: tf.train.Feature(float_list=tf.train.FloatList(value=[float(v)]))
        for k, v in zip(FEATURES, row)})).SerializeToString()


def test_signatures_agree_and_match_numpy(tmp_path):
    model_dir = make_saved_model(str(tmp_path / "m"), FEATURES, threshold=1.5, seed=2)
    loaded = tf.saved_model.load(model_dir)
    x, _ = make_rows(64, FEATURES, seed=3)
    by_matrix = loaded.signatures["score_features"](features=tf.constant(x, tf.float32))
    by_example = loaded.signatures["serving_default"](
        examples=tf.constant([_example(r) for r in x]))
    np.testing.assert_allclose(by_matrix["reconstruction_error"].numpy(),
                               by_example["reconstruction_error"].numpy(), rtol=1e-6)
    fe = by_matrix["feature_errors"].numpy()
    assert fe.shape == (64, 4)
    np.testing.assert_allclose(fe.mean(axis=1), by_matrix["reconstruction_error"].numpy(),
                               rtol=1e-5)
    np.testing.assert_array_equal(by_matrix["is_anomaly"].numpy(),
                                  by_matrix["reconstruction_error"].numpy() > np.float32(1.5))
    # The z-score runs inside the graph: transform_features == (x - 50) / 10.
    z = loaded.signatures["transform_features"](examples=tf.constant([_example(r) for r in x]))
    np.testing.assert_allclose(z["features"].numpy(), (x - 50) / 10, rtol=1e-5, atol=1e-6)


def test_threshold_write_changes_only_the_threshold(tmp_path):
    src = make_saved_model(str(tmp_path / "trained"), FEATURES, threshold=float("nan"), seed=4)
    dst = str(tmp_path / "thresholded")
    info = {"threshold": 0.75, "method": "mean_std", "params": {"k": 3.0}}
    export.write_thresholded_model(src, dst, 0.75, info)
    a, b = tf.saved_model.load(src), tf.saved_model.load(dst)
    x, _ = make_rows(50, FEATURES, seed=5)
    oa = a.signatures["score_features"](features=tf.constant(x, tf.float32))
    ob = b.signatures["score_features"](features=tf.constant(x, tf.float32))
    np.testing.assert_array_equal(oa["reconstruction_error"].numpy(),
                                  ob["reconstruction_error"].numpy())
    assert np.isnan(oa["threshold"].numpy()).all() and not oa["is_anomaly"].numpy().any()
    np.testing.assert_array_equal(ob["threshold"].numpy(), np.full(50, 0.75, np.float32))
    np.testing.assert_array_equal(ob["is_anomaly"].numpy(),
                                  ob["reconstruction_error"].numpy() > np.float32(0.75))
    ra = tf.train.load_checkpoint(os.path.join(src, "variables", "variables"))
    rb = tf.train.load_checkpoint(os.path.join(dst, "variables", "variables"))
    assert ra.get_variable_to_dtype_map() == rb.get_variable_to_dtype_map()
    for name in ra.get_variable_to_dtype_map():
        if name not in (layout.THRESHOLD_CHECKPOINT_KEY, "_CHECKPOINTABLE_OBJECT_GRAPH"):
            np.testing.assert_array_equal(ra.get_tensor(name), rb.get_tensor(name))
    with open(os.path.join(src, "saved_model.pb"), "rb") as f1, \
            open(os.path.join(dst, "saved_model.pb"), "rb") as f2:
        assert f1.read() == f2.read()  # graph and signatures untouched
    with open(os.path.join(dst, "assets", layout.THRESHOLD_FILE)) as f:
        assert json.load(f) == info
    assert layout.read_metadata(dst)["features"] == FEATURES
    fp_a = tf.saved_model.experimental.read_fingerprint(src)
    fp_b = tf.saved_model.experimental.read_fingerprint(dst)
    assert fp_a.checkpoint_hash != fp_b.checkpoint_hash  # re-fingerprinted


def test_export_carries_no_optimizer_or_training_functions(tmp_path):
    import keras

    from components.model.autoencoder import build_autoencoder
    from components.model.settings import ModelSettings

    model = build_autoencoder(4, ModelSettings(epochs=1))
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    model.fit(x, x, epochs=1, verbose=0)
    assert model.train_function is not None  # what the export must not carry
    copy = export.inference_copy(model, 4, ModelSettings(epochs=1))
    assert isinstance(copy, keras.Model) and copy.train_function is None
    assert getattr(copy, "optimizer", None) is None
    assert sorted(v.path for v in copy.variables) == sorted(v.path for v in model.weights)
    np.testing.assert_array_equal(copy(x).numpy(), model(x).numpy())
    # Exported through the serving module: the checkpoint holds weights and the
    # threshold only, no optimizer state.
    from tests.helpers.savedmodels import ZScoreLayer

    spec = {k: tf.io.FixedLenFeature([], tf.float32) for k in FEATURES}
    module = export.AnomalyServingModule(copy, ZScoreLayer(FEATURES, [0.0] * 4, [1.0] * 4),
                                             spec, FEATURES)
    export.save_module(module, str(tmp_path / "exported"))
    keys = tf.train.load_checkpoint(str(tmp_path / "exported" / "variables" / "variables")
                                    ).get_variable_to_dtype_map()
    assert not [k for k in keys if "optimizer" in k]
    assert layout.THRESHOLD_CHECKPOINT_KEY in keys


def test_ensemble_averages_members_and_scale_normalises_features(tmp_path):
    import keras

    from components.model.autoencoder import build_autoencoder
    from components.trainer.fit import feature_error_scale
    from components.model.settings import ModelSettings
    from tests.helpers.savedmodels import ZScoreLayer

    members = []
    for seed in (0, 1):
        keras.utils.set_random_seed(seed)
        members.append(build_autoencoder(4, ModelSettings(seed=seed), compile=False))
    x, _ = make_rows(200, FEATURES, seed=6)
    z = ((x - 50) / 10).astype(np.float32)
    scale = feature_error_scale(members, z)
    sq = sum((z - m(z).numpy()) ** 2 for m in members) / 2
    np.testing.assert_allclose(scale, sq.mean(axis=0), rtol=1e-5)
    spec = {k: tf.io.FixedLenFeature([], tf.float32) for k in FEATURES}
    module = export.AnomalyServingModule(members, ZScoreLayer(FEATURES, [50.0] * 4,
                                                                  [10.0] * 4),
                                             spec, FEATURES, threshold=1.0,
                                             feature_error_scale=scale)
    export.save_module(module, str(tmp_path / "ens"))
    out = tf.saved_model.load(str(tmp_path / "ens")).signatures["score_features"](
        features=tf.constant(x, tf.float32))
    np.testing.assert_allclose(out["feature_errors"].numpy(), sq / scale, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out["reconstruction_error"].numpy(), (sq / scale).mean(axis=1),
                               rtol=1e-4, atol=1e-6)
    # Normalised on the rows it was fitted on: every feature's mean error is 1.
    np.testing.assert_allclose(out["feature_errors"].numpy().mean(axis=0), np.ones(4), rtol=1e-4)


def test_feature_error_scale_is_positive_and_checked():
    from components.model.autoencoder import build_autoencoder
    from components.trainer.fit import feature_error_scale
    from components.model.settings import ModelSettings

    m = build_autoencoder(4, ModelSettings(), compile=False)
    z = np.zeros((10, 4), np.float32)
    assert (feature_error_scale([m], z) > 0).all()  # floored, never 0
    import pytest

    with pytest.raises(ValueError, match="positive"):
        export.AnomalyServingModule(m, None, {k: None for k in FEATURES}, FEATURES,
                                        feature_error_scale=[1.0, 0.0, 1.0, 1.0])
