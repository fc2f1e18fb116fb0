"""The exported SavedModel: raw columns in, Transform inside, errors and flag out.

Signatures (names in components/model/layout.py), every one with the outputs
`reconstruction_error` [batch] float32, `is_anomaly` [batch] bool, `threshold`
[batch] float32 and `feature_errors` [batch, columns] float32 (each original
column's error -- components/model/inputs.py groups one-hot and indicator
inputs back -- averaged over an ensemble's members and divided by
`feature_error_scale` when errors are normalised, in the order of
`assets/model_metadata.json`'s `error_columns`); `reconstruction_error` is
their row mean:
- `serving_default(examples)`: serialized tf.Examples of the raw columns:
  numbers as float (or int64) lists, categorical and time columns as bytes
  lists; a missing feature (or NaN, or an empty string) is a missing value,
  scored. Passthrough columns and the label are ignored.
- `score_stored_examples(examples)`: the same on tf.Examples as ExampleGen
  stored them.
- `transform_features(examples)`: the model's input matrix, for inspection.
- `score_table(numbers, strings)`: float32 [batch, len(numeric_inputs)] (NaN =
  missing) and string [batch, len(string_inputs)] ("" = missing), columns in
  the metadata's `numeric_inputs` / `string_inputs` order. Batch scoring and
  the MLflow pyfunc use it.
- `score_features(features)`: float32 [batch, d] in `features` order; only for
  models whose inputs are all numbers (the layout before string columns).

The threshold is a variable: the Trainer exports NaN (nothing is flagged) and
the Evaluator writes the fitted value into a copy with `write_thresholded_model`.
"""
import functools
import math
import os
from typing import Any, Dict, List, Optional

import numpy as np
import tensorflow as tf

from components.columns import ColumnRoles
from components.model import inputs as inputs_lib
from components.model import layout
from components.model.autoencoder import build_autoencoder
from components.model.inputs import InputLayout, build_layout


class _Untracked:
    """Not a Trackable: what it holds is not saved as a child object."""

    def __init__(self, value):
        self.value = value


class AnomalyServingModule(tf.Module):
    """Holds the Keras model(s), the TFT layer and the threshold for export.

    `model` is one autoencoder or a list (an ensemble: the members' squared
    errors are averaged). `feature_keys`: the raw columns the model reads
    (numeric, then string ones); `roles` say which are strings; `input_layout`
    how Transform's outputs form the input vector (default: one z-scored input
    per numeric column). `feature_error_scale` ([columns], optional) divides
    each column's error (per-column error normalisation); the row's error is
    the mean over columns of what remains.
    """

    def __init__(self, model, tft_layer, raw_feature_spec: Dict[str, Any],
                 feature_keys: List[str], threshold: float = math.nan,
                 feature_error_scale=None, roles: Optional[ColumnRoles] = None,
                 input_layout: Optional[InputLayout] = None):
        super().__init__(name="anomaly_serving")
        self.models = list(model) if isinstance(model, (list, tuple)) else [model]
        roles = roles or ColumnRoles()
        self._layout = input_layout or build_layout(roles, list(feature_keys), {})
        strings = set(roles.categorical) | set(roles.time_features)
        self._feature_keys = list(feature_keys)
        self.numeric_inputs = [k for k in feature_keys if k not in strings]
        self.string_inputs = [k for k in feature_keys if k in strings]
        n_columns = len(self._layout.columns)
        scale = (np.ones(n_columns) if feature_error_scale is None
                 else np.asarray(feature_error_scale, dtype=np.float64))
        if scale.shape != (n_columns,) or not np.all(np.isfinite(scale)) or \
                np.any(scale <= 0):
            raise ValueError(f"feature_error_scale must hold {n_columns} positive "
                             f"finite values")
        self.feature_error_scale = tf.Variable(scale.astype(np.float32), trainable=False,
                                               name="feature_error_scale")
        self._grouping = None if self._layout.is_identity() else tf.constant(
            self._layout.grouping())
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
        self._stored_spec = {k: raw_feature_spec[k] for k in feature_keys}
        # Serving parses every column as optional: a missing feature is a missing value.
        self._serving_spec = {k: tf.io.VarLenFeature(tf.string if k in strings else tf.float32)
                              for k in feature_keys}

        spec = [tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")]
        # No AutoGraph: these functions have no tensor-dependent Python control
        # flow, and converting the Keras and TFT layer code they call costs
        # ~5 s of every export.
        graph_fn = functools.partial(tf.function, autograph=False)
        self.serve = graph_fn(self._serve, input_signature=spec)
        self.score_stored = graph_fn(self._score_stored, input_signature=spec)
        self.transform = graph_fn(self._transform_features, input_signature=spec)
        self.score_table = graph_fn(self._score_table, input_signature=[
            tf.TensorSpec(shape=[None, len(self.numeric_inputs)], dtype=tf.float32,
                          name="numbers"),
            tf.TensorSpec(shape=[None, len(self.string_inputs)], dtype=tf.string,
                          name="strings")])
        self.score_matrix = None
        if not self.string_inputs:
            self.score_matrix = graph_fn(self._score_features, input_signature=[
                tf.TensorSpec(shape=[None, len(self._feature_keys)], dtype=tf.float32,
                              name="features")])

    def signatures(self) -> Dict[str, Any]:
        out = {
            layout.SERVING_SIGNATURE: self.serve.get_concrete_function(),
            layout.SCORE_STORED_SIGNATURE: self.score_stored.get_concrete_function(),
            layout.TRANSFORM_SIGNATURE: self.transform.get_concrete_function(),
            layout.SCORE_TABLE_SIGNATURE: self.score_table.get_concrete_function(),
        }
        if self.score_matrix is not None:
            out[layout.SCORE_FEATURES_SIGNATURE] = self.score_matrix.get_concrete_function()
        return out

    def _matrix(self, raw: Dict[str, tf.Tensor]) -> tf.Tensor:
        return inputs_lib.matrix(self._tft.value(raw), self._layout)

    def _outputs(self, raw: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        x = self._matrix(raw)
        sq = tf.add_n([tf.square(x - tf.cast(m(x, training=False), tf.float32))
                       for m in self.models]) / float(len(self.models))
        if self._grouping is not None:
            sq = tf.matmul(sq, self._grouping)
        sq = sq / self.feature_error_scale
        err = tf.reduce_mean(sq, axis=1)
        thr = tf.fill(tf.shape(err), tf.identity(self.threshold))
        return {
            "reconstruction_error": err,
            "is_anomaly": tf.greater(err, thr),
            "threshold": thr,
            "feature_errors": sq,
        }

    def _raw(self, columns: Dict[str, tf.Tensor]) -> Dict[str, Any]:
        """[batch] columns (NaN / "" where missing) as the transform graph takes them."""
        return {k: raw_from_values(v, self._stored_spec[k]) for k, v in columns.items()}

    def _serve(self, examples):
        parsed = tf.io.parse_example(examples, self._serving_spec)
        columns = {}
        for k, v in parsed.items():
            dense = tf.sparse.to_dense(tf.sparse.reset_shape(v, [tf.shape(
                examples, out_type=tf.int64)[0], 1]), default_value="" if v.dtype == tf.string
                else math.nan)
            columns[k] = tf.reshape(dense, [-1])
        return self._outputs(self._raw(columns))

    def _score_stored(self, examples):
        return self._outputs(tf.io.parse_example(examples, self._stored_spec))

    def _score_table(self, numbers, strings):
        columns = {k: numbers[:, i] for i, k in enumerate(self.numeric_inputs)}
        columns.update({k: strings[:, i] for i, k in enumerate(self.string_inputs)})
        return self._outputs(self._raw(columns))

    def _score_features(self, features):
        return self._outputs(self._raw({k: features[:, i]
                                        for i, k in enumerate(self._feature_keys)}))

    def _transform_features(self, examples):
        raw = tf.io.parse_example(examples, self._stored_spec)
        return {"features": self._matrix(raw)}


def raw_from_values(values: tf.Tensor, spec) -> Any:
    """A [batch] column (NaN or "" where missing) as its raw feature spec wants it:
    dense [batch, 1] for a FixedLenFeature, else a SparseTensor of the present values."""
    if values.dtype == tf.string:
        present = tf.not_equal(tf.strings.strip(values), "")
    else:
        present = tf.logical_not(tf.math.is_nan(values))
    values = tf.cast(values, spec.dtype) if values.dtype != tf.string else values
    if isinstance(spec, tf.io.FixedLenFeature):
        return tf.reshape(values, [-1] + list(spec.shape))
    idx = tf.where(present)
    return tf.SparseTensor(tf.concat([idx, tf.zeros_like(idx)], axis=1), tf.gather_nd(values, idx),
                           tf.stack([tf.shape(values, out_type=tf.int64)[0],
                                     tf.constant(1, tf.int64)]))


def export_serving_model(models, tft_output, feature_keys: List[str], export_dir: str,
                         metadata: Dict[str, Any], model_config,
                         feature_error_scale=None, roles: Optional[ColumnRoles] = None,
                         input_layout: Optional[InputLayout] = None) -> None:
    """Writes the SavedModel with its signatures and model_metadata.json.

    `models`: the fitted autoencoder, or the list of an ensemble's members;
    `feature_keys`: the raw columns the model reads.
    """
    members = list(models) if isinstance(models, (list, tuple)) else [models]
    width = input_layout.width if input_layout is not None else len(feature_keys)
    module = AnomalyServingModule(
        [inference_copy(m, width, model_config) for m in members],
        tft_output.transform_features_layer(), tft_output.raw_feature_spec(), feature_keys,
        feature_error_scale=feature_error_scale, roles=roles, input_layout=input_layout)
    save_module(module, export_dir)
    layout.write_json(layout.asset_path(export_dir, layout.METADATA_FILE), dict(
        metadata, features=list(feature_keys), numeric_inputs=module.numeric_inputs,
        string_inputs=module.string_inputs, error_columns=module._layout.names,
        input_layout=module._layout.to_dict(), roles=(roles or ColumnRoles()).to_dict()))


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
    tf.saved_model.save(module, export_dir, signatures=module.signatures())


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
