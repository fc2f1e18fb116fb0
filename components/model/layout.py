"""The layout of an exported model, named in one place.

A model directory (the Trainer's `Format-Serving/`, a pushed
`serving_model/<name>/<version>/`) holds:

    saved_model.pb, variables/variables.*     the SavedModel (signatures below)
    fingerprint.pb
    assets/model_metadata.json                features (the raw columns read),
                                              numeric_inputs / string_inputs (score_table's
                                              column order), error_columns (feature_errors'),
                                              roles, input_layout, label_column, settings
    assets/threshold.json                     threshold, method, params, error stats
                                              (written by the AnomalyEvaluator)
    assets/training_summary.json              the Trainer's summary

`serving_model/<name>/` holds one directory per version, named by an integer
(the push time); the newest is the largest number. Reading the JSON files
needs no TensorFlow graph load (`tf.io.gfile` for remote paths, imported lazily).
"""
import json
import os
import re
from typing import Any, Dict, List, Optional, Tuple

from components.errors import InputError

SAVED_MODEL_FILE = "saved_model.pb"
ASSETS_DIR = "assets"
METADATA_FILE = "model_metadata.json"
THRESHOLD_FILE = "threshold.json"
TRAINING_SUMMARY_FILE = "training_summary.json"
VARIABLES_PREFIX = os.path.join("variables", "variables")
THRESHOLD_CHECKPOINT_KEY = "threshold/.ATTRIBUTES/VARIABLE_VALUE"

# Signatures (see components/model/export.py).
SERVING_SIGNATURE = "serving_default"          # serialized tf.Examples of raw columns
SCORE_FEATURES_SIGNATURE = "score_features"    # float32 [batch, d] raw values (numbers only)
SCORE_TABLE_SIGNATURE = "score_table"          # float32 numbers + string columns
SCORE_STORED_SIGNATURE = "score_stored_examples"  # tf.Examples as ExampleGen stored them
TRANSFORM_SIGNATURE = "transform_features"     # the z-scored matrix
OUTPUTS = ("reconstruction_error", "is_anomaly", "threshold", "feature_errors")

_VERSION = re.compile(r"\d+")


def asset_path(model_dir: str, name: str) -> str:
    return os.path.join(model_dir, ASSETS_DIR, name)


def is_model_dir(path: str) -> bool:
    return os.path.exists(os.path.join(path, SAVED_MODEL_FILE))


def versions(base_dir: str) -> List[str]:
    """The version directories under `serving_model/<name>/`, oldest first."""
    if not os.path.isdir(base_dir):
        return []
    found = [d for d in os.listdir(base_dir) if _VERSION.fullmatch(d)
             and is_model_dir(os.path.join(base_dir, d))]
    return sorted(found, key=int)


def newest_version_dir(base_dir: str) -> Optional[str]:
    """The newest `<base_dir>/<version>/`, or None."""
    found = versions(base_dir)
    return os.path.join(base_dir, found[-1]) if found else None


def resolve_model_dir(path: str) -> str:
    """A model directory, or a `serving_model/<name>` directory whose newest version is used.

    Raises InputError naming the path when it is neither.
    """
    if not os.path.isdir(path):
        raise InputError(path, problem="model directory not found")
    if is_model_dir(path):
        return path
    newest = newest_version_dir(path)
    if newest is None:
        raise InputError(path, problem=f"not a SavedModel (no {SAVED_MODEL_FILE}) nor a "
                                       f"directory of numbered versions")
    return newest


def write_json(path: str, data: Any) -> None:
    import tensorflow as tf  # gfile: artifacts may live on a remote filesystem

    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps(data, indent=2, sort_keys=True, default=float))


def read_json(path: str) -> Any:
    if "://" not in path:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    import tensorflow as tf

    with tf.io.gfile.GFile(path) as f:
        return json.loads(f.read())


def read_metadata(model_dir: str) -> Dict[str, Any]:
    """assets/model_metadata.json."""
    return read_json(asset_path(model_dir, METADATA_FILE))


def model_features(model_dir: str) -> List[str]:
    """The raw columns the model reads (an input must have them)."""
    return list(read_metadata(model_dir)["features"])


def table_columns(metadata: Dict[str, Any]) -> Tuple[List[str], List[str]]:
    """(numeric_inputs, string_inputs): the score_table signature's column order
    (a model from before string columns: every feature numeric)."""
    numeric = metadata.get("numeric_inputs")
    if numeric is None:
        return list(metadata["features"]), []
    return list(numeric), list(metadata.get("string_inputs") or [])


def error_columns(metadata: Dict[str, Any]) -> List[str]:
    """The columns of `feature_errors`, in order (what top_features names)."""
    return list(metadata.get("error_columns") or metadata["features"])


def exists(path: str) -> bool:
    if "://" not in path:
        return os.path.exists(path)
    import tensorflow as tf

    return tf.io.gfile.exists(path)


def read_threshold(model_dir: str) -> Optional[Dict[str, Any]]:
    """assets/threshold.json (threshold, method, params, error statistics), if present."""
    path = asset_path(model_dir, THRESHOLD_FILE)
    return read_json(path) if exists(path) else None
