"""A small real SavedModel with the pipeline's signatures, without running the DAG.

The z-score layer stands in for TFT's transform layer (fixed means and
scales); everything else is the production export code
(`components.signatures.AnomalyServingModule`): same signatures, same
assets/model_metadata.json and threshold.json.
"""
import os

import numpy as np
import tensorflow as tf

from components import features as feature_lib
from components import signatures
from components.model import build_autoencoder
from pipeline.config import ModelConfig


class ZScoreLayer:
    """Stands in for tft.TFTransformOutput.transform_features_layer()."""

    def __init__(self, keys, mean, scale):
        self.keys, self.mean, self.scale = list(keys), list(mean), list(scale)

    def __call__(self, raw):
        return {feature_lib.transformed_name(k):
                (tf.cast(raw[k], tf.float32) - float(m)) / float(s)
                for k, m, s in zip(self.keys, self.mean, self.scale)}


def make_saved_model(export_dir: str, feature_keys, threshold: float = 1.0, seed: int = 0,
                     label_column: str = "label", mean=None, scale=None) -> str:
    """Writes a SavedModel (random autoencoder weights) to `export_dir`."""
    import keras

    keras.utils.set_random_seed(seed)
    d = len(feature_keys)
    mean = [50.0] * d if mean is None else mean
    scale = [10.0] * d if scale is None else scale
    model = build_autoencoder(d, ModelConfig())
    spec = {k: tf.io.FixedLenFeature([], tf.float32) for k in feature_keys}
    module = signatures.AnomalyServingModule(model, ZScoreLayer(feature_keys, mean, scale), spec,
                                             list(feature_keys), threshold=threshold)
    signatures._save(module, export_dir)
    signatures.write_json(os.path.join(export_dir, "assets", signatures.METADATA_FILE),
                          {"features": list(feature_keys), "label_column": label_column})
    signatures.write_json(os.path.join(export_dir, "assets", signatures.THRESHOLD_FILE),
                          {"threshold": threshold, "method": "mean_std", "params": {"k": 3.0}})
    return export_dir


def make_rows(n: int, feature_keys, seed: int = 0, outliers: float = 0.05):
    """Raw values around 50 +- 10, a share of them far off, and a 0/1 label."""
    rng = np.random.default_rng(seed)
    x = 50 + 10 * rng.normal(size=(n, len(feature_keys)))
    label = (rng.random(n) < outliers).astype(int)
    x[label == 1] += rng.choice([-1, 1], size=(int(label.sum()), 1)) * 60
    return x, label
