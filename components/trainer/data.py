"""The Trainer's data path: raw examples -> the model's input rows, in memory or streamed.

Transform runs with `materialize=False`; the Trainer reads the raw examples
ExampleGen wrote (Parquet or TFRecords, components/examples_io.py) in record
batches and applies the TFT layer to each, so the training data is never
transformed and written to disk twice. The input rows (z-scores, missing-
indicators, one-hot categories, time parts: components/model/inputs.py) are then fed to
Keras as arrays, exactly like the plain recipe's (`TrainingData`), or
streamed every epoch when they exceed `model.memory_budget_mb`.
"""
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from components import examples_io
from components.columns import ColumnRoles, vocabulary_name
from components.model.inputs import build_layout, matrix_np

PARSE_BATCH = 65536


def split_uris(file_pattern) -> List[str]:
    """The split folders behind the Trainer's file patterns (`.../Split-train/*`)."""
    patterns = file_pattern if isinstance(file_pattern, (list, tuple)) else [file_pattern]
    uris = [p[:-2] if p.endswith("/*") else p for p in patterns]
    if not uris:
        raise ValueError("no training examples")
    return uris


def raw_tensor(values: np.ndarray, spec) -> "tf.Tensor | tf.SparseTensor":
    """A raw feature as Transform's graph takes it (`spec`: its raw feature spec):
    dense [n, 1] for a FixedLenFeature (missing: NaN or b""), else a SparseTensor
    of the rows that have a value."""
    if isinstance(spec, tf.io.FixedLenFeature):
        return tf.reshape(tf.constant(values.astype(spec.dtype.as_numpy_dtype, copy=False)
                                      if spec.dtype != tf.string else values.tolist(),
                                      dtype=spec.dtype), [-1] + list(spec.shape))
    present = (values != b"") if values.dtype == object else ~np.isnan(values)
    rows = np.flatnonzero(present)
    kept = values[rows]
    return tf.SparseTensor(
        indices=np.stack([rows, np.zeros_like(rows)], axis=1).astype(np.int64),
        values=tf.constant(kept.tolist() if values.dtype == object else
                           kept.astype(spec.dtype.as_numpy_dtype), dtype=spec.dtype),
        dense_shape=[len(values), 1])


class ModelInputs:
    """Raw record batches -> the model's float32 input matrices, through the TFT layer.

    `raw_keys`: the raw columns the model reads (numeric, categorical, time);
    `layout`: how Transform's outputs become the input vector
    (components/model/inputs.py), with each categorical column's vocabulary
    size read from the transform graph.
    """

    def __init__(self, tft_output: tft.TFTransformOutput, roles: ColumnRoles):
        self._spec = tft_output.raw_feature_spec()
        self._layer = tft_output.transform_features_layer()
        self.roles = roles
        self.raw_keys = roles.feature_keys(self._spec.keys())
        self.layout = build_layout(roles, list(self._spec.keys()), {
            c: tft_output.vocabulary_size_by_name(vocabulary_name(c)) for c in roles.categorical})

    @property
    def width(self) -> int:
        return self.layout.width

    def __call__(self, cols: Dict[str, np.ndarray], keep: Optional[np.ndarray] = None
                 ) -> np.ndarray:
        raw = {k: raw_tensor(cols[k] if keep is None else cols[k][keep], self._spec[k])
               for k in self.raw_keys}
        n = len(cols[self.raw_keys[0]]) if keep is None else int(np.count_nonzero(keep))
        if not raw or n == 0:
            return np.zeros((0, self.width), np.float32)
        out = self._layer(raw)
        return matrix_np({k: v.numpy() for k, v in out.items()}, self.layout)


def _column_batches(file_pattern, keys: List[str]) -> Iterator[Dict[str, np.ndarray]]:
    """{column: values (NaN / b"" where missing)} per record batch of a split."""
    for uri in split_uris(file_pattern):
        for batch in examples_io.iter_record_batches(uri, keys, PARSE_BATCH):
            yield {k: examples_io.values_or_missing(batch, k) for k in keys}


def transformed_blocks(file_pattern, inputs: ModelInputs, label_column: Optional[str],
                       normal_only: bool, validation_split: float
                       ) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """(train rows, validation rows) per record batch: model inputs, float32 [n, width].

    The split is streamed in record batches (components/examples_io.py:
    Parquet or TFRecords); each batch goes through the TFT layer as one
    tensor per column. With `normal_only`, rows whose label is not 0 are
    dropped first: the autoencoder learns what normal looks like. Validation
    rows are deterministic: of every 100 (normal) rows in stream order, the
    first round(100 * validation_split).
    """
    keys = list(inputs.raw_keys) + ([label_column] if label_column else [])
    cut = int(round(100 * validation_split))
    seen = 0
    for cols in _column_batches(file_pattern, keys):
        keep = (cols[label_column] == 0) if normal_only and label_column else None
        x = inputs(cols, keep)
        n = len(x)
        if n == 0:
            continue
        is_val = (np.arange(seen, seen + n) % 100) < cut
        seen += n
        yield x[~is_val], x[is_val]


def labelled_rows(file_pattern, inputs: ModelInputs, label_column: str, max_rows: int
                  ) -> Tuple[np.ndarray, np.ndarray]:
    """(model inputs, 0/1 labels) of a split, its first `max_rows` rows."""
    keys = list(inputs.raw_keys) + [label_column]
    xs, ys, n = [], [], 0
    for cols in _column_batches(file_pattern, keys):
        xs.append(inputs(cols))
        ys.append((cols[label_column] != 0).astype(np.int64))
        n += len(xs[-1])
        if n >= max_rows:
            break
    if not xs:
        return np.zeros((0, inputs.width), np.float32), np.zeros(0, np.int64)
    return np.concatenate(xs)[:max_rows], np.concatenate(ys)[:max_rows]


class TrainingData:
    """The z-scored training and validation rows, in memory or streamed.

    In memory (the default while 4 * d bytes per row fit in
    `model.memory_budget_mb`): two float32 matrices, fed to Keras like the
    plain recipe's arrays (shuffled every epoch). Beyond the budget the
    examples are read again every epoch as a tf.data stream of record
    batches, rows shuffled within each batch and the batches re-cut to the
    training batch size; at most `STREAM_VALIDATION_ROWS` validation rows are
    kept (for early stopping). Memory then stays at a few batches.
    """

    STREAM_VALIDATION_ROWS = 200_000

    def __init__(self, blocks_fn, n_features: int, budget_bytes: int):
        self._blocks_fn, self._d = blocks_fn, n_features
        train, val, size = [], [], 0
        self.streaming = False
        self.n_train = self.n_val = 0
        for t, v in blocks_fn():
            if not self.streaming:
                train.append(t)
                size += t.nbytes + v.nbytes
                if size > budget_bytes:
                    self.streaming, train = True, []
            if not self.streaming or self.n_val < self.STREAM_VALIDATION_ROWS:
                val.append(v)
            self.n_train += len(t)
            self.n_val += len(v)
        self.x_val = (np.concatenate(val) if val else np.zeros((0, n_features), np.float32))
        if self.streaming:
            self.x_val = self.x_val[:self.STREAM_VALIDATION_ROWS]
            self.x_train = None
        else:
            self.x_train = (np.concatenate(train) if train
                            else np.zeros((0, n_features), np.float32))

    def sample_train(self, max_rows: Optional[int] = None) -> np.ndarray:
        """The first training rows (no validation rows exist: validation_split 0)."""
        max_rows = max_rows or self.STREAM_VALIDATION_ROWS
        if self.x_train is not None:
            return self.x_train[:max_rows]
        rows, n = [], 0
        for t, _ in self._blocks_fn():
            rows.append(t)
            n += len(t)
            if n >= max_rows:
                break
        return np.concatenate(rows)[:max_rows] if rows else np.zeros((0, self._d), np.float32)

    def train_dataset(self, batch_size: int, seed: int) -> tf.data.Dataset:
        """The streamed training set (only when `streaming`)."""
        d = self._d

        def gen():
            for t, _ in self._blocks_fn():
                if len(t):
                    yield t

        ds = tf.data.Dataset.from_generator(
            gen, output_signature=tf.TensorSpec([None, d], tf.float32))
        ds = ds.map(lambda x: tf.random.shuffle(x, seed=seed)).rebatch(batch_size)
        return ds.map(lambda x: (x, x)).prefetch(tf.data.AUTOTUNE)
