"""What a pushed version is registered with: its record (MLflow tags, registry.json). TFX-free."""
import hashlib
import json
import os
import time
from typing import Any, Dict, Optional

from components.evaluator.artifacts import EVALUATION_FILE, SCALAR_METRICS
from components.model import layout


def _read_json(path: str) -> Optional[Dict[str, Any]]:
    return layout.read_json(path) if layout.exists(path) else None


def schema_digest(schema_uri: str) -> Optional[str]:
    """sha256 of the schema file SchemaGen wrote (schema.pbtxt)."""
    import tensorflow as tf

    path = os.path.join(schema_uri, "schema.pbtxt")
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path, "rb") as f:
        return "sha256:" + hashlib.sha256(f.read()).hexdigest()


def version_record(serving_path: str, serving_version: str, data_path: Optional[str],
                   pipeline_run_id: Optional[str], evaluation_uri: Optional[str] = None,
                   examples_uri: Optional[str] = None, data_span: Optional[int] = None,
                   schema_uri: Optional[str] = None, model_dir: Optional[str] = None
                   ) -> Dict[str, Any]:
    """The fields registered with a pushed (so blessed) version: MLflow tags, registry.json.

    `model_dir`: where the version's files are now (its staged copy before it is
    renamed to `serving_path`); default `serving_path`."""
    thr = layout.read_threshold(model_dir or serving_path) or {}
    report = (_read_json(os.path.join(evaluation_uri, EVALUATION_FILE)) if evaluation_uri
              else None)
    metrics = {k: float(v) for k, v in ((report or {}).get("metrics") or {}).items()
               if k in SCALAR_METRICS and isinstance(v, (int, float)) and v is not None}
    return {
        "serving_version": str(serving_version),
        "saved_model_path": serving_path,
        "blessed": True,
        "threshold": thr.get("threshold"),
        "threshold_method": thr.get("method"),
        "threshold_params": thr.get("params") or {},
        "metrics": metrics,
        "pipeline_run_id": pipeline_run_id,
        "data_path": data_path,
        "data_span": data_span,
        "examples_uri": examples_uri,
        "schema_digest": schema_digest(schema_uri) if schema_uri else None,
        "evaluation_uri": evaluation_uri,
        "pushed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def mlflow_tags(record: Dict[str, Any]) -> Dict[str, str]:
    tags = {
        "threshold": repr(record["threshold"]),
        "threshold_method": str(record["threshold_method"]),
        "threshold_params": json.dumps(record["threshold_params"], sort_keys=True),
        "pipeline_run_id": str(record["pipeline_run_id"]),
        "data_path": str(record["data_path"]),
        "data_span": str(record["data_span"]),
        "schema_digest": str(record["schema_digest"]),
    }
    tags.update({f"metrics.{k}": repr(v) for k, v in record["metrics"].items()})
    return tags
