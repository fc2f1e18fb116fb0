"""Score raw feature rows with a pushed SavedModel, outside TFX.

One small class shared by batch scoring (`pipeline/batch_scoring`, Beam
RunInference) and the MLflow pyfunc wrapper (`components/registry/pyfunc.py`):

- the model is loaded the TF2 way, `tf.saved_model.load` (Keras loading of
  this SavedModel breaks in TFX 1.16, tensorflow/tfx#7782);
- rows go through the `score_table` signature: a float32 matrix of the raw
  (unscaled) numeric columns and a string matrix of the categorical and time
  columns, in the order of `assets/model_metadata.json`'s `numeric_inputs`
  and `string_inputs`; Transform runs in the graph. (A model from before
  string columns has only `score_features`, used the same way.)
"""
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np

from components.model import layout


class SavedModelScorer:
    """A loaded SavedModel that maps raw columns (matrices, frames) to scores."""

    def __init__(self, model_dir: str):
        import tensorflow as tf

        self.model_dir = model_dir
        metadata = layout.read_metadata(model_dir)
        self.features = list(metadata["features"])
        self.numeric_inputs, self.string_inputs = layout.table_columns(metadata)
        self.error_columns = layout.error_columns(metadata)
        self._tf = tf
        self._loaded = tf.saved_model.load(model_dir)
        self._table = self._loaded.signatures.get(layout.SCORE_TABLE_SIGNATURE)
        self._matrix = self._loaded.signatures.get(layout.SCORE_FEATURES_SIGNATURE)

    @property
    def threshold(self) -> float:
        return float(self._loaded.threshold.numpy())

    @staticmethod
    def _result(out) -> Dict[str, np.ndarray]:
        return {"reconstruction_error": out["reconstruction_error"].numpy(),
                "is_anomaly": out["is_anomaly"].numpy(),
                "feature_errors": out["feature_errors"].numpy()}

    def score_table(self, numbers: np.ndarray, strings: Optional[np.ndarray] = None
                    ) -> Dict[str, np.ndarray]:
        """numbers [n, len(numeric_inputs)] (NaN = missing), strings [n, len(string_inputs)]
        ("" = missing) -> float32 errors, bool flags, per-column errors."""
        numbers = np.ascontiguousarray(numbers, dtype=np.float32).reshape(
            -1, len(self.numeric_inputs))
        n = len(numbers)
        if strings is None:
            strings = np.empty((n, 0), dtype=object)
        if strings.shape != (n, len(self.string_inputs)):
            raise ValueError(f"expected strings [{n}, {len(self.string_inputs)}], got "
                             f"{strings.shape}")
        if self._table is None:  # a model from before string columns
            return self._result(self._matrix(features=self._tf.constant(numbers)))
        return self._result(self._table(
            numbers=self._tf.constant(numbers),
            strings=self._tf.constant(strings.astype(object).tolist() if strings.size else
                                      np.empty((n, 0), dtype=np.bytes_), dtype=self._tf.string)))

    def score_matrix(self, x: np.ndarray) -> Dict[str, np.ndarray]:
        """x: [n, d] raw values of a model whose inputs are all numbers, in `features` order."""
        if self.string_inputs:
            raise ValueError("this model reads string columns: use score_table")
        return self.score_table(x)

    def table_from_columns(self, columns: Mapping[str, Any], n: int
                           ) -> Tuple[np.ndarray, np.ndarray]:
        """(numbers, strings) from {column: values} (missing cells: NaN, None or "")."""
        missing = [f for f in self.features if f not in columns]
        if missing:
            raise ValueError("missing feature column(s): " + ", ".join(missing))
        numbers = np.empty((n, len(self.numeric_inputs)), dtype=np.float32)
        for j, f in enumerate(self.numeric_inputs):
            numbers[:, j] = to_numbers(columns[f])
        strings = np.empty((n, len(self.string_inputs)), dtype=object)
        for j, f in enumerate(self.string_inputs):
            strings[:, j] = to_strings(columns[f])
        return numbers, strings

    def score_frame(self, frame):
        """A pandas DataFrame with (at least) the model's columns, any order; string
        columns as text, empty cells as NaN/None.

        Returns a DataFrame with `reconstruction_error` (float), `is_anomaly`
        (0/1) and `top_features` (components/model/explain.py) on the same index.
        Other columns are ignored.
        """
        from components.model.explain import top_features
        import pandas as pd

        if not isinstance(frame, pd.DataFrame):
            frame = pd.DataFrame(frame)
        numbers, strings = self.table_from_columns(
            {c: frame[c].to_numpy() for c in frame.columns if c in self.features}, len(frame))
        out = self.score_table(numbers, strings)
        return pd.DataFrame({
            "reconstruction_error": out["reconstruction_error"].astype(np.float64),
            "is_anomaly": out["is_anomaly"].astype(np.int64),
            "top_features": top_features(out["feature_errors"], self.error_columns),
        }, index=frame.index)


def to_numbers(values) -> np.ndarray:
    """Numbers, NaN for missing (None, "", NaN); numeric strings are parsed."""
    arr = np.asarray(values)
    if arr.dtype.kind in "fiub":
        return arr.astype(np.float64)
    out = np.empty(len(arr), dtype=np.float64)
    for i, v in enumerate(arr):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            out[i] = np.nan
        elif isinstance(v, (bytes, str)):
            text = v.decode("utf-8") if isinstance(v, bytes) else v
            out[i] = float(text) if text.strip() else np.nan
        else:
            out[i] = float(v)
    return out


def to_strings(values) -> np.ndarray:
    """UTF-8 bytes, b"" for missing (None, NaN)."""
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            out[i] = b""
        elif isinstance(v, bytes):
            out[i] = v
        else:
            out[i] = str(v).encode("utf-8")
    return out
