"""The distributed run's model and scores against the local run's (run_distributed.py).

    python tests/distributed/compare.py LOCAL_MODEL DIST_MODEL DATA_CSV SCORED_CSV RTOL ATOL

- weights: every variable of the two SavedModels' checkpoints (optimizer slots
  aside), within rtol/atol, and whether they are bit-identical;
- the threshold baked into each model;
- scores: SCORED_CSV (`score` of the distributed model on the worker host)
  against the local model scoring DATA_CSV in this process
  (components/model/scorer.py): reconstruction_error within rtol/atol and
  the same is_anomaly flags (how many rows have the same top_features is
  reported, not checked: shares that tie may order differently).

Prints one JSON line; "ok" is the verdict.
"""
import json
import sys

import numpy as np


def _variables(model_dir: str):
    import tensorflow as tf

    reader = tf.train.load_checkpoint(f"{model_dir}/variables/variables")
    names = {k for k in reader.get_variable_to_shape_map()
             if "OPTIMIZER" not in k and "_CHECKPOINTABLE" not in k}
    return reader, names


def compare_weights(a: str, b: str, rtol: float, atol: float) -> dict:
    ra, ka = _variables(a)
    rb, kb = _variables(b)
    out = {"variables": len(ka), "same_variable_names": ka == kb, "max_abs_diff": 0.0,
           "bit_identical": ka == kb, "differing": []}
    for k in sorted(ka & kb):
        x, y = ra.get_tensor(k), rb.get_tensor(k)
        if x.shape != y.shape:
            out["differing"].append(k)
            out["bit_identical"] = False
            continue
        if x.dtype.kind in "fiu" and x.size:
            diff = np.abs(x.astype(np.float64) - y.astype(np.float64))
            out["max_abs_diff"] = max(out["max_abs_diff"], float(diff.max()))
            if not np.allclose(x, y, rtol=rtol, atol=atol):
                out["differing"].append(k)
        elif not np.array_equal(x, y):
            out["differing"].append(k)
        out["bit_identical"] = out["bit_identical"] and bool(np.array_equal(x, y))
    out["ok"] = out["same_variable_names"] and not out["differing"]
    return out


def compare_scores(reference, scored, rtol: float, atol: float) -> dict:
    if len(reference) != len(scored):
        return {"rows": [len(reference), len(scored)], "ok": False}
    x = reference["reconstruction_error"].to_numpy(np.float64)
    y = scored["reconstruction_error"].to_numpy(np.float64)
    flips = int((reference["is_anomaly"].to_numpy() != scored["is_anomaly"].to_numpy()).sum())
    same_top = (int((reference["top_features"].to_numpy() == scored["top_features"].to_numpy())
                    .sum()) if "top_features" in scored else None)
    close = bool(np.allclose(x, y, rtol=rtol, atol=atol))
    return {"rows": len(x), "max_abs_diff": float(np.abs(x - y).max()),
            "max_rel_diff": float((np.abs(x - y) / np.maximum(np.abs(x), 1e-12)).max()),
            "flag_flips": flips, "flagged": [int(reference["is_anomaly"].sum()),
                                             int(scored["is_anomaly"].sum())],
            "same_top_features": same_top, "ok": close and flips == 0}


def main(argv) -> int:
    import pandas as pd

    from components.model.scorer import SavedModelScorer

    local_model, dist_model, data_csv, scored_csv = argv[:4]
    rtol, atol = float(argv[4]), float(argv[5])
    local, dist = SavedModelScorer(local_model), SavedModelScorer(dist_model)
    out = {"weights": compare_weights(local_model, dist_model, rtol, atol),
           "threshold": [local.threshold, dist.threshold]}
    out["threshold_ok"] = bool(np.isclose(local.threshold, dist.threshold, rtol=rtol, atol=atol))
    reference = local.score_frame(pd.read_csv(data_csv))
    scored = pd.read_csv(scored_csv, keep_default_na=False)
    out["scores"] = compare_scores(reference, scored, rtol, atol)
    out["ok"] = out["weights"]["ok"] and out["threshold_ok"] and out["scores"]["ok"]
    print(json.dumps(out, sort_keys=True), flush=True)
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
