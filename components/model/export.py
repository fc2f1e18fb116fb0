"""The exported SavedModel: raw tf.Examples in, z-score inside, errors and flag out.

Signatures (names in components/model/layout.py):
- `serving_default(examples)`: serialized tf.Examples whose features are float
  lists (raw, unscaled). Outputs `reconstruction_error` [batch] float32,
  `is_anomaly` [batch] bool, `threshold` [batch] float32 and
  `feature_errors` [batch, d] float32 (per-feature squared error, averaged
  over an ensemble's members and divided by `feature_error_scale` when the
  errors are normalised, in the order of `assets/model_metadata.json`'s
  `features`); `reconstruction_error` is their row mean.
- `score_stored_examples(examples)`: the same on tf.Examples as ExampleGen
  stored them (integer columns stay int64 lists).
- `transform_features(examples)`: the z-scored features, for inspection.
- `score_features(features)`: a float32 [batch, d] matrix of raw values in
  the metadata's feature order; the same outputs. Batch scoring uses it to
  skip building tf.Examples.

The threshold is a variable: the Trainer exports NaN (nothing is flagged) and
the Evaluator writes the fitted value into a copy with `write_thresholded_model`.
"""
import functools
import math
import os
from typing import Any, Dict, List

import numpy as np
import tensorflow as tf

from components.columns import transformed_name
from components.model import layout
from components.model.autoencoder import build_autoencoder


class _Untracked:
    """Not a Trackable: what it holds is not saved as a child object."""

    def __init__(self, value):
        self.value = value


class AnomalyServingModule(tf.Module):
    """Holds the Keras model(s), the TFT layer and the threshold for export.

    `model` is one autoencoder or a list (an ensemble: the members' squared
    errors are averaged). `feature_error_scale` ([d], optional) divides each
    feature's squared error (per-feature error normalisation); the row's
    error is the mean over features of what remains.
    """

    def __init__(self, model, tft_layer, raw_feature_spec: Dict[str, Any],
                 feature_keys: List[str], threshold: float = math.nan,
                 feature_error_scale=None):
        super().__init__(name="anomaly_serving")
        self.models = list(model) if isinstance(model, (list, tuple)) else [model]
        scale = (np.ones(len(feature_keys)) if feature_error_scale is None
                 else np.asarray(feature_error_scale, dtype=np.float64))
        if scale.shape != (len(feature_keys),) or not np.all(np.isfinite(scale)) or \
                np.any(scale <= 0):
            raise ValueError(f"feature_error_scale must hold {len(feature_keys)} positive "
                             f"finite values")
        self.feature_error_scale = tf.Variable(scale.astype(np.float32), trainable=False,
                                               name="feature_error_scale")
        # TFT's layer is a tf_keras Model: tracked as such, saving it traces
        # its Keras call functions (~5 s per export) for nothing. It is held
        # untracked instead and only what it loaded is tracked (the transform
        # graph's functions and resources), as TFT's layer tracks it itself.
        self._tft = _Untracked(tft_layer)
        loader = getattr(tft_layer, "_saved_model_loader", None)
        if loader is not None:
            self.tft_resources = loader.__dict__
        self.threshold = tf.Variable(threshold, dtype=tf.float32, trainable=False,
                                     name="threshold")
        self._feature_keys = list(feature_keys)
        self._stored_spec = {k: raw_feature_spec[k] for k in feature_keys}
        self._float_spec = {
            k: tf.io.FixedLenFeature(spec.shape, tf.float32)
            for k, spec in self._stored_spec.items()
        }

        spec = [tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")]
        # No AutoGraph: these functions have no tensor-dependent Python control
        # flow, and converting the Keras and TFT layer code they call costs
        # ~5 s of every export.
        graph_fn = functools.partial(tf.function, autograph=False)
        self.serve = graph_fn(self._serve, input_signature=spec)
        self.score_stored = graph_fn(self._score_stored, input_signature=spec)
        self.transform = graph_fn(self._transform_features, input_signature=spec)
        self.score_matrix = graph_fn(self._score_features, input_signature=[
            tf.TensorSpec(shape=[None, len(self._feature_keys)], dtype=tf.float32,
                          name="features")])

    def _matrix(self, raw: Dict[str, tf.Tensor]) -> tf.Tensor:
        transformed = self._tft.value(raw)
        cols = [tf.reshape(tf.cast(transformed[transformed_name(k)], tf.float32), [-1, 1])
                for k in self._feature_keys]
        return tf.concat(cols, axis=1)

    def _outputs(self, raw: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        x = self._matrix(raw)
        sq = tf.add_n([tf.square(x - tf.cast(m(x, training=False), tf.float32))
                       for m in self.models]) / float(len(self.models))
        sq = sq / self.feature_error_scale
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


def export_serving_model(models, tft_output, feature_keys: List[str], export_dir: str,
                         metadata: Dict[str, Any], model_config,
                         feature_error_scale=None) -> None:
    """Writes the SavedModel with its signatures and model_metadata.json.

    `models`: the fitted autoencoder, or the list of an ensemble's members.
    """
    members = list(models) if isinstance(models, (list, tuple)) else [models]
    module = AnomalyServingModule(
        [inference_copy(m, len(feature_keys), model_config) for m in members],
        tft_output.transform_features_layer(), tft_output.raw_feature_spec(), feature_keys,
        feature_error_scale=feature_error_scale)
    save_module(module, export_dir)
    layout.write_json(layout.asset_path(export_dir, layout.METADATA_FILE),
                      dict(metadata, features=list(feature_keys)))


def inference_copy(model, n_features: int, model_config):
    """The same layers and weights (components.model), never compiled or fitted.

    A fitted Keras model carries its traced train/test/predict functions and
    the optimizer's state; `tf.saved_model.save` traces every function it
    finds on the objects it saves (~6 s per export) and writes the optimizer's
    variables, none of which a signature uses.
    """
    copy = build_autoencoder(n_features, model_config, compile=False)
    copy.set_weights(model.get_weights())
    return copy


def save_module(module, export_dir: str) -> None:
    signatures = {
        layout.SERVING_SIGNATURE: module.serve.get_concrete_function(),
        layout.SCORE_STORED_SIGNATURE: module.score_stored.get_concrete_function(),
        layout.TRANSFORM_SIGNATURE: module.transform.get_concrete_function(),
        layout.SCORE_FEATURES_SIGNATURE: module.score_matrix.get_concrete_function(),
    }
    tf.saved_model.save(module, export_dir, signatures=signatures)


def write_thresholded_model(src_dir: str, dst_dir: str, threshold: float,
                            threshold_info: Dict[str, Any]) -> None:
    """Copies the Trainer's SavedModel with the threshold baked in.

    The graph and signatures are copied byte for byte; only the variables
    checkpoint is written again, with every tensor as it was but the
    `threshold` variable's. No graph is loaded or traced (a load + save round
    trip cost ~3 s and could only change what was exported). Then
    threshold.json and the model metadata go into `assets/`.
    """
    _copy_tree(src_dir, dst_dir)
    reader = tf.train.load_checkpoint(os.path.join(src_dir, layout.VARIABLES_PREFIX))
    names = sorted(reader.get_variable_to_dtype_map())
    if layout.THRESHOLD_CHECKPOINT_KEY not in names:
        raise ValueError(f"{src_dir}: the SavedModel has no threshold variable")
    tensors = [tf.constant(float(threshold), tf.float32) if n == layout.THRESHOLD_CHECKPOINT_KEY
               else tf.constant(reader.get_tensor(n)) for n in names]
    tf.raw_ops.SaveV2(prefix=os.path.join(dst_dir, layout.VARIABLES_PREFIX), tensor_names=names,
                      shape_and_slices=[""] * len(names), tensors=tensors)
    # fingerprint.pb hashes the checkpoint too: written again, as tf.saved_model.save does.
    from tensorflow.python.saved_model import fingerprinting_utils

    fingerprinting_utils.write_fingerprint(dst_dir)
    layout.write_json(layout.asset_path(dst_dir, layout.THRESHOLD_FILE), threshold_info)


def _copy_tree(src: str, dst: str) -> None:
    for dirpath, _, files in tf.io.gfile.walk(src):
        rel = os.path.relpath(dirpath, src)
        target = dst if rel == "." else os.path.join(dst, rel)
        tf.io.gfile.makedirs(target)
        for name in files:
            tf.io.gfile.copy(os.path.join(dirpath, name), os.path.join(target, name),
                             overwrite=True)
