"""Why a row was flagged: the features contributing most to its reconstruction error.

Pure numpy, no TensorFlow: the input is the SavedModel's `feature_errors`
output ([n, d], one non-negative contribution per feature, columns in the order
of `assets/model_metadata.json`'s `features`), whose row mean is the row's
`reconstruction_error`. A feature's *share* is its contribution divided by the
row's total, so the shares of all d features sum to 1.

    from components.explain import top_features
    out = fn(features=x)                                   # score_features signature
    col = top_features(out["feature_errors"].numpy(), meta["features"], k=3)
    # -> ["f3:0.52;f7:0.21;f0:0.09", ...]   (one string per row)
"""
from typing import List, Sequence

import numpy as np

__all__ = ["top_features", "top_feature_indices"]


def _check(feature_errors, names: Sequence[str], k: int) -> np.ndarray:
    fe = np.asarray(feature_errors, dtype=np.float64)
    if fe.ndim != 2:
        raise ValueError(f"feature_errors must be a 2-D [rows, features] array, got shape "
                         f"{fe.shape}")
    if len(names) != fe.shape[1]:
        raise ValueError(f"{len(names)} feature names for {fe.shape[1]} feature_errors columns")
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if np.any(fe < 0):
        raise ValueError("feature_errors must be non-negative (squared errors)")
    return fe


def top_feature_indices(feature_errors, k: int = 3) -> np.ndarray:
    """[n, min(k, d)] column indices by decreasing contribution (ties: lower index first)."""
    fe = np.asarray(feature_errors, dtype=np.float64)
    if fe.ndim != 2:
        raise ValueError(f"feature_errors must be 2-D, got shape {fe.shape}")
    # NaN sorts last under a stable argsort of the negated values.
    order = np.argsort(-np.nan_to_num(fe, nan=-np.inf), axis=1, kind="stable")
    return order[:, :min(int(k), fe.shape[1])]


def top_features(feature_errors: np.ndarray, names: List[str], k: int = 3,
                 decimals: int = 2) -> List[str]:
    """One string per row: the k features contributing most, with their share.

    Format `name:share;name:share;...` by decreasing share, e.g.
    "f3:0.52;f7:0.21;f0:0.09"; shares are contribution / row total, rounded to
    `decimals`. Ties keep the model's feature order. A row whose total error is
    0 or not finite (NaN/Inf anywhere) has no meaningful share: its string is
    empty.
    """
    fe = _check(feature_errors, names, k)
    n, d = fe.shape
    if n == 0:
        return []
    totals = fe.sum(axis=1)
    valid = np.isfinite(totals) & (totals > 0)
    idx = top_feature_indices(np.where(valid[:, None], fe, 0.0), k)
    shares = np.take_along_axis(fe, idx, axis=1) / np.where(valid, totals, 1.0)[:, None]
    fmt = f"{{}}:{{:.{int(decimals)}f}}"
    out: List[str] = []
    for i in range(n):
        if not valid[i]:
            out.append("")
            continue
        out.append(";".join(fmt.format(names[j], s) for j, s in zip(idx[i], shares[i])))
    return out
