"""The exported SavedModel: raw tf.Examples in, z-score inside, errors and flag out.

Signatures (see CONTRACT.md):
- `serving_default(examples)`: serialized tf.Examples whose features are float
  lists (raw, unscaled). Outputs `reconstruction_error` [batch] float32,
  `is_anomaly` [batch] bool, `threshold` [batch] float32 and
  `feature_errors` [batch, d] float32 (per-feature squared error, in the
  order of `assets/model_metadata.json`'s `features`).
- `score_stored_examples(examples)`: the same on tf.Examples as ExampleGen
  stored them (integer columns stay int64 lists); used by the Evaluator.
- `transform_features(examples)`: the z-scored features, for inspection.
- `score_features(features)`: a float32 [batch, d] matrix of raw values in
  the metadata's feature order; the same outputs. Batch scoring uses it to
  skip building tf.Examples.

The threshold is a variable: the Trainer exports NaN (nothing is flagged) and
the Evaluator writes the fitted value with `write_thresholded_model`.
"""
import json
import math
import os
from typing import Any, Dict, List, Optional

import tensorflow as tf

from components import features

METADATA_FILE = "model_metadata.json"
THRESHOLD_FILE = "threshold.json"


class AnomalyServingModule(tf.Module):
    """Holds the Keras model, the TFT layer and the threshold for export."""

    def __init__(self, model, tft_layer, raw_feature_spec: Dict[str, Any],
                 feature_keys: List[str], threshold: float = math.nan):
        super().__init__(name="anomaly_serving")
        self.model = model
        self.tft_layer = tft_layer
        self.threshold = tf.Variable(threshold, dtype=tf.float32, trainable=False,
                                     name="threshold")
        self._feature_keys = list(feature_keys)
        self._stored_spec = {k: raw_feature_spec[k] for k in feature_keys}
        self._float_spec = {
            k: tf.io.FixedLenFeature(spec.shape, tf.float32)
            for k, spec in self._stored_spec.items()
        }

        spec = [tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")]
        self.serve = tf.function(self._serve, input_signature=spec)
        self.score_stored = tf.function(self._score_stored, input_signature=spec)
        self.transform = tf.function(self._transform_features, input_signature=spec)
        self.score_matrix = tf.function(self._score_features, input_signature=[
            tf.TensorSpec(shape=[None, len(self._feature_keys)], dtype=tf.float32,
                          name="features")])

    def _matrix(self, raw: Dict[str, tf.Tensor]) -> tf.Tensor:
        transformed = self.tft_layer(raw)
        cols = [tf.reshape(tf.cast(transformed[features.transformed_name(k)], tf.float32), [-1, 1])
                for k in self._feature_keys]
        return tf.concat(cols, axis=1)

    def _outputs(self, raw: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        x = self._matrix(raw)
        recon = self.model(x, training=False)
        sq = tf.square(x - tf.cast(recon, tf.float32))
        err = tf.reduce_mean(sq, axis=1)
        thr = tf.fill(tf.shape(err), tf.identity(self.threshold))
        return {
            "reconstruction_error": err,
            "is_anomaly": tf.greater(err, thr),
            "threshold": thr,
            "feature_errors": sq,
        }

    def _serve(self, examples):
        parsed = tf.io.parse_example(examples, self._float_spec)
        raw = {k: tf.cast(v, self._stored_spec[k].dtype) for k, v in parsed.items()}
        return self._outputs(raw)

    def _score_stored(self, examples):
        return self._outputs(tf.io.parse_example(examples, self._stored_spec))

    def _score_features(self, features):
        raw = {}
        for i, k in enumerate(self._feature_keys):
            spec = self._stored_spec[k]
            col = tf.reshape(features[:, i], [-1] + list(spec.shape))
            raw[k] = tf.cast(col, spec.dtype)
        return self._outputs(raw)

    def _transform_features(self, examples):
        raw = tf.io.parse_example(examples, self._stored_spec)
        return {"features": self._matrix(raw)}


def export_serving_model(model, tft_output, feature_keys: List[str], export_dir: str,
                         metadata: Dict[str, Any]) -> None:
    """Writes the SavedModel with its three signatures and model_metadata.json."""
    module = AnomalyServingModule(model, tft_output.transform_features_layer(),
                                  tft_output.raw_feature_spec(), feature_keys)
    _save(module, export_dir)
    write_json(os.path.join(export_dir, "assets", METADATA_FILE),
               dict(metadata, features=list(feature_keys)))


def _save(module, export_dir: str) -> None:
    signatures = {
        "serving_default": module.serve.get_concrete_function(),
        "score_stored_examples": module.score_stored.get_concrete_function(),
        "transform_features": module.transform.get_concrete_function(),
        "score_features": module.score_matrix.get_concrete_function(),
    }
    tf.saved_model.save(module, export_dir, signatures=signatures)


def write_thresholded_model(src_dir: str, dst_dir: str, threshold: float,
                            threshold_info: Dict[str, Any]) -> None:
    """Copies the Trainer's SavedModel with the threshold baked in.

    Loads TF2-style (tf.saved_model.load; Keras loading of this model breaks in
    TFX 1.16, tensorflow/tfx#7782), assigns the variable and saves again, then
    puts threshold.json and the model metadata into `assets/`.
    """
    loaded = tf.saved_model.load(src_dir)
    loaded.threshold.assign(float(threshold))
    signatures = {name: loaded.signatures[name] for name in loaded.signatures}
    tf.saved_model.save(loaded, dst_dir, signatures=signatures)
    meta = read_json(os.path.join(src_dir, "assets", METADATA_FILE))
    write_json(os.path.join(dst_dir, "assets", METADATA_FILE), meta)
    write_json(os.path.join(dst_dir, "assets", THRESHOLD_FILE), threshold_info)


def read_model_metadata(model_dir: str) -> Dict[str, Any]:
    return read_json(os.path.join(model_dir, "assets", METADATA_FILE))


def read_threshold_info(model_dir: str) -> Optional[Dict[str, Any]]:
    path = os.path.join(model_dir, "assets", THRESHOLD_FILE)
    return read_json(path) if tf.io.gfile.exists(path) else None


def write_json(path: str, data: Any) -> None:
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps(data, indent=2, sort_keys=True, default=float))


def read_json(path: str) -> Any:
    with tf.io.gfile.GFile(path) as f:
        return json.loads(f.read())
