"""Why a row was flagged: the features contributing most to its reconstruction error.

numpy and pyarrow, no TensorFlow: the input is the SavedModel's `feature_errors`
output ([n, d], one non-negative contribution per feature, columns in the order
of `assets/model_metadata.json`'s `features`), whose row mean is the row's
`reconstruction_error`. A feature's *share* is its contribution divided by the
row's total, so the shares of all d features sum to 1.

    from components.model.explain import top_features
    out = fn(features=x)                                   # score_features signature
    col = top_features(out["feature_errors"].numpy(), meta["features"], k=3)
    # -> ["f3:0.52;f7:0.21;f0:0.09", ...]   (one string per row)
"""
from typing import List, Sequence

import numpy as np

__all__ = ["DEFAULT_K", "top_features", "top_features_array", "top_feature_indices"]

# `score` and the pyfunc wrapper list this many features per row.
DEFAULT_K = 3


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


def top_features_array(feature_errors: np.ndarray, names: List[str], k: int = DEFAULT_K,
                       decimals: int = 2):
    """`top_features` as a pyarrow string array, built with Arrow kernels.

    No per-row Python: `score` formats millions of rows with it. Shares are
    rounded half-to-even on `share * 10**decimals`.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    fe = _check(feature_errors, names, k)
    if isinstance(decimals, bool) or int(decimals) != decimals or decimals < 0:
        raise ValueError(f"decimals must be a non-negative integer, got {decimals!r}")
    decimals = int(decimals)
    n = fe.shape[0]
    if n == 0:
        return pa.array([], type=pa.string())
    with np.errstate(invalid="ignore", over="ignore"):
        totals = fe.sum(axis=1)
        valid = np.isfinite(totals) & (totals > 0)
        idx = top_feature_indices(np.where(valid[:, None], fe, 0.0), k)
        shares = np.take_along_axis(fe, idx, axis=1) / np.where(valid, totals, 1.0)[:, None]
    scale = 10 ** decimals
    units = np.rint(np.where(valid[:, None], shares, 0.0) * scale).astype(np.int64)
    name_array = pa.array(list(names), type=pa.string())
    parts = []
    for j in range(idx.shape[1]):
        name = name_array.take(pa.array(idx[:, j]))
        number = pc.cast(pa.array(units[:, j] // scale), pa.string())
        if decimals:
            frac = pc.utf8_lpad(pc.cast(pa.array(units[:, j] % scale), pa.string()),
                                width=decimals, padding="0")
            number = pc.binary_join_element_wise(number, frac, ".")
        parts.append(pc.binary_join_element_wise(name, number, ":"))
    joined = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, ";")
    return pc.if_else(pa.array(valid), joined, pa.scalar("", pa.string()))


def top_features(feature_errors: np.ndarray, names: List[str], k: int = DEFAULT_K,
                 decimals: int = 2) -> List[str]:
    """One string per row: the k features contributing most, with their share.

    Format `name:share;name:share;...` by decreasing share, e.g.
    "f3:0.52;f7:0.21;f0:0.09"; shares are contribution / row total, rounded to
    `decimals`. Ties keep the model's feature order. A row whose total error is
    0 or not finite (NaN/Inf anywhere) has no meaningful share: its string is
    empty.
    """
    return top_features_array(feature_errors, names, k, decimals).to_pylist()
