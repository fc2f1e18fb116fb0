"""A small real SavedModel with the pipeline's signatures, without running the DAG.

The z-score layer stands in for TFT's transform layer (fixed means and
scales); everything else is the production export code
(`components.model.export.AnomalyServingModule`): same signatures, same
assets/model_metadata.json and threshold.json.
"""
import json
import os

import numpy as np
import tensorflow as tf

from components.columns import transformed_name
from components.model import export, layout
from components.model.autoencoder import build_autoencoder
from components.model.settings import ModelSettings


class ZScoreLayer:
    """Stands in for tft.TFTransformOutput.transform_features_layer()."""

    def __init__(self, keys, mean, scale):
        self.keys, self.mean, self.scale = list(keys), list(mean), list(scale)

    def __call__(self, raw):
        # as components/transform.py: a missing (NaN) value is imputed with the mean (z = 0)
        out = {}
        for k, m, s in zip(self.keys, self.mean, self.scale):
            z = (tf.cast(raw[k], tf.float32) - float(m)) / float(s)
            out[transformed_name(k)] = tf.where(tf.math.is_nan(z), tf.zeros_like(z), z)
        return out


def make_saved_model(export_dir: str, feature_keys, threshold: float = 1.0, seed: int = 0,
                     label_column: str = "label", mean=None, scale=None) -> str:
    """Writes a SavedModel (random autoencoder weights) to `export_dir`."""
    import keras

    keras.utils.set_random_seed(seed)
    d = len(feature_keys)
    mean = [50.0] * d if mean is None else mean
    scale = [10.0] * d if scale is None else scale
    model = build_autoencoder(d, ModelSettings())
    spec = {k: tf.io.FixedLenFeature([], tf.float32) for k in feature_keys}
    module = export.AnomalyServingModule(model, ZScoreLayer(feature_keys, mean, scale), spec,
                                         list(feature_keys), threshold=threshold)
    export.save_module(module, export_dir)
    layout.write_json(layout.asset_path(export_dir, layout.METADATA_FILE),
                      {"features": list(feature_keys), "label_column": label_column})
    layout.write_json(layout.asset_path(export_dir, layout.THRESHOLD_FILE),
                      {"threshold": threshold, "method": "mean_std", "params": {"k": 3.0}})
    return export_dir


def make_rows(n: int, feature_keys, seed: int = 0, outliers: float = 0.05):
    """Raw values around 50 +- 10, a share of them far off, and a 0/1 label."""
    rng = np.random.default_rng(seed)
    x = 50 + 10 * rng.normal(size=(n, len(feature_keys)))
    label = (rng.random(n) < outliers).astype(int)
    x[label == 1] += rng.choice([-1, 1], size=(int(label.sum()), 1)) * 60
    return x, label


VARIABLES = "variables/variables.data-00000-of-00001"


def fake_model_dir(path, size=256 * 1024):
    """A directory laid out like a pushed version (random bytes, no TensorFlow)."""
    os.makedirs(os.path.join(path, "variables"))
    os.makedirs(os.path.join(path, "assets"))
    with open(os.path.join(path, VARIABLES), "wb") as f:
        f.write(os.urandom(size))
    with open(os.path.join(path, "variables", "variables.index"), "wb") as f:
        f.write(os.urandom(1024))
    with open(os.path.join(path, "assets", "threshold.json"), "w") as f:
        json.dump({"threshold": 1.5, "method": "mean_std", "params": {"k": 3.0}}, f)
    with open(os.path.join(path, "assets", "model_metadata.json"), "w") as f:
        json.dump({"features": ["a", "b"], "label_column": None}, f)
    with open(os.path.join(path, "saved_model.pb"), "wb") as f:
        f.write(os.urandom(4096))
    return path


def inventory(path):
    """{relative path: size} of every file under `path`."""
    out = {}
    for root, _, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            out[os.path.relpath(full, path)] = os.path.getsize(full)
    return out
