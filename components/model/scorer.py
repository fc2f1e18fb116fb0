"""Score raw feature rows with a pushed SavedModel, outside TFX.

One small class shared by batch scoring (`pipeline/batch_scoring`, Beam
RunInference) and the MLflow pyfunc wrapper (`components/registry/pyfunc.py`):

- the model is loaded the TF2 way, `tf.saved_model.load` (Keras loading of
  this SavedModel breaks in TFX 1.16, tensorflow/tfx#7782);
- rows go through the `score_features` signature: a float32 [batch, d] matrix
  of raw (unscaled) values, columns in the order of
  `assets/model_metadata.json`'s `features`; the z-score runs in the graph.
"""
from typing import Dict, Mapping

import numpy as np

from components.model import layout


class SavedModelScorer:
    """A loaded SavedModel that maps raw feature matrices/frames to scores."""

    def __init__(self, model_dir: str):
        import tensorflow as tf

        self.model_dir = model_dir
        self.features = layout.model_features(model_dir)
        self._tf = tf
        self._loaded = tf.saved_model.load(model_dir)
        self._fn = self._loaded.signatures[layout.SCORE_FEATURES_SIGNATURE]

    @property
    def threshold(self) -> float:
        return float(self._loaded.threshold.numpy())

    def score_matrix(self, x: np.ndarray) -> Dict[str, np.ndarray]:
        """x: [n, d] raw values in `features` order -> float32 errors, bool flags."""
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != len(self.features):
            raise ValueError(f"expected a [n, {len(self.features)}] matrix, got {x.shape}")
        out = self._fn(features=self._tf.constant(x))
        return {"reconstruction_error": out["reconstruction_error"].numpy(),
                "is_anomaly": out["is_anomaly"].numpy(),
                "feature_errors": out["feature_errors"].numpy()}

    def matrix_from_columns(self, columns: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        missing = [f for f in self.features if f not in columns]
        if missing:
            raise ValueError("missing feature column(s): " + ", ".join(missing))
        x = np.empty((n, len(self.features)), dtype=np.float32)
        for j, f in enumerate(self.features):
            x[:, j] = np.asarray(columns[f], dtype=np.float64)
        return x

    def score_frame(self, frame):
        """A pandas DataFrame with (at least) the feature columns, any order.

        Returns a DataFrame with `reconstruction_error` (float), `is_anomaly`
        (0/1) and `top_features` (components/model/explain.py) on the same index.
        Other columns are ignored.
        """
        from components.model.explain import top_features
        import pandas as pd

        if not isinstance(frame, pd.DataFrame):
            frame = pd.DataFrame(frame)
        x = self.matrix_from_columns({c: frame[c].to_numpy() for c in frame.columns
                                      if c in self.features}, len(frame))
        out = self.score_matrix(x)
        return pd.DataFrame({
            "reconstruction_error": out["reconstruction_error"].astype(np.float64),
            "is_anomaly": out["is_anomaly"].astype(np.int64),
            "top_features": top_features(out["feature_errors"], self.features),
        }, index=frame.index)
