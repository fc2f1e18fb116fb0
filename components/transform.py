"""Transform's `preprocessing_fn`: z-score every feature, pass the label through.

The z-score statistics are computed by TFT over the training split and are
embedded in the serving graph through `transform_features_layer()`, so the
exported model takes raw, unscaled values.
"""
from typing import Any, Dict, Optional

import tensorflow as tf
import tensorflow_transform as tft

from components import features


def preprocessing_fn(inputs: Dict[str, Any],
                     custom_config: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    label = (custom_config or {}).get("label_column")
    outputs = {}
    for key in features.feature_keys(inputs.keys(), label):
        value = tf.cast(inputs[key], tf.float32)
        outputs[features.transformed_name(key)] = tft.scale_to_z_score(value)
    if label and label in inputs:
        # Passed through for evaluation and for training on normal rows only;
        # never a model input.
        outputs[label] = inputs[label]
    return outputs
