"""Transform's `preprocessing_fn`: z-score every feature, pass the label through.

The z-score statistics are computed by TFT over the training split and are
embedded in the serving graph through `transform_features_layer()`, so the
exported model takes raw, unscaled values. custom_config = {"columns":
ColumnRoles} (pipeline/dag.py).
"""
from typing import Any, Dict, Optional

import tensorflow as tf
import tensorflow_transform as tft

from components.columns import ColumnRoles, transformed_name


def preprocessing_fn(inputs: Dict[str, Any],
                     custom_config: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    roles = ColumnRoles.from_dict((custom_config or {}).get("columns"))
    outputs = {}
    for key in roles.feature_keys(inputs.keys()):
        value = tf.cast(inputs[key], tf.float32)
        outputs[transformed_name(key)] = tft.scale_to_z_score(value)
    if roles.label and roles.label in inputs:
        # Passed through for evaluation and for training on normal rows only;
        # never a model input.
        outputs[roles.label] = inputs[roles.label]
    return outputs
