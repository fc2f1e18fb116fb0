"""`anomaly-pipeline score`: flag the rows of a CSV with a pushed SavedModel.

The CSV is checked first (same checks as `run`, against the model's feature
list), then streamed in chunks through the model's `score_features`
signature, and written to a temporary file renamed into place at the end, so
a failed run never leaves a partial output CSV.
"""
import os
import re
import time
from typing import Any, Dict, List

import numpy as np

from pipeline.csv_checks import InputError, check_csv, read_header

SIGNATURE = "score_features"


def resolve_model_dir(path: str) -> str:
    """A SavedModel dir, or a serving_model/<name> dir whose newest version is used."""
    if path.startswith("models:/"):
        raise InputError(path=path, row=None, column=None,
                         problem="registry URIs need the MLflow registry handoff; pass the "
                                 "SavedModel directory")
    if not os.path.isdir(path):
        raise InputError(path=path, row=None, column=None, problem="model directory not found")
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return path
    versions = [d for d in os.listdir(path) if re.fullmatch(r"\d+", d)
                and os.path.exists(os.path.join(path, d, "saved_model.pb"))]
    if not versions:
        raise InputError(path=path, row=None, column=None,
                         problem="not a SavedModel (no saved_model.pb) nor a directory of "
                                 "numbered versions")
    return os.path.join(path, max(versions, key=int))


def score_csv(model: str, input_csv: str, output_csv: str, batch_size: int = 8192
              ) -> Dict[str, Any]:
    import pandas as pd
    import tensorflow as tf

    from components import signatures

    started = time.time()
    model_dir = resolve_model_dir(model)
    meta = signatures.read_model_metadata(model_dir)
    feature_keys: List[str] = meta["features"]
    label = meta.get("label_column")
    header = read_header(input_csv)
    label_present = label if label and label in header else None
    check_csv(input_csv, label_column=label_present, expected_features=feature_keys,
              mode="score")

    loaded = tf.saved_model.load(model_dir)
    fn = loaded.signatures[SIGNATURE]
    tmp = f"{output_csv}.tmp-{os.getpid()}"
    rows = flagged = 0
    try:
        first = True
        for chunk in pd.read_csv(input_csv, chunksize=batch_size, dtype=np.float64,
                                 skipinitialspace=True):
            x = chunk[feature_keys].to_numpy(dtype=np.float32)
            out = fn(features=tf.constant(x))
            chunk["reconstruction_error"] = out["reconstruction_error"].numpy()
            chunk["is_anomaly"] = out["is_anomaly"].numpy().astype(np.int8)
            if label_present:
                chunk[label_present] = chunk[label_present].astype(np.int64)
            chunk.to_csv(tmp, mode="w" if first else "a", header=first, index=False)
            first = False
            rows += len(chunk)
            flagged += int(chunk["is_anomaly"].sum())
        os.replace(tmp, output_csv)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    seconds = time.time() - started
    return {"model": model_dir, "rows": rows, "flagged": flagged, "output": output_csv,
            "threshold": float(loaded.threshold.numpy()), "seconds": round(seconds, 3),
            "rows_per_second": round(rows / seconds, 1) if seconds else None}
