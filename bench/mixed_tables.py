"""A numeric labelled table turned into a user-shaped one (pandas/numpy only, no TFX).

`bench/quality.py` runs its `mixed` variant on these tables: the shared datasets as a
user would hand them over, with ids, timestamps, string categories and empty cells,
run with `anomaly-pipeline run --data T --label-column label` and no column flag.

`to_user_table(df, seed)` takes a frame with columns f0..f{d-1} (numbers) and `label`
(1 = anomaly) and returns a new frame, one row per input row, in the input's row order
and with the input's index:

    row_id      first column: "r-" + the row's index label, six digits ("r-000123");
                unique, and it maps every output row back to its source row (the index
                of the frame, e.g. the original row number after a train/test split;
                a frame whose index is not unique non-negative integers uses 0..n-1)
    event_time  ISO 8601 UTC text, "2024-01-01T00:00:00Z" + 300 s per source row + a
                random 0-299 s: increasing in source-row order, no information on the
                label (the pipeline makes it passthrough: every value is a date/time)
    f<i>        (a) "coded" columns: up to `max_coded` (3) of the columns with at most
                `max_coded_values` (10) distinct values in the reference frame, picked at
                random, rewritten as strings "v_" + the value (`%.6g`, more digits if
                that would merge two values: "v_3", "v_-0.0614006"). A one-to-one
                rewrite: the column keeps its information (not its order). Same name.
    f<i>_bin    (b) "binned" columns: 1 (2 when at least 8 columns have more than
                `max_coded_values` distinct values) of the informative continuous
                columns -- univariate |ROC-AUC - 0.5| >= 0.1 against the label in the
                reference frame, else the most informative one -- picked at random,
                REPLACED (same position) by their quantile bins "low" / "mid" / "high"
                (tertile edges of the reference frame; a value on an edge goes up; fewer
                labels when edges tie). Information is lost here, on purpose: this is
                what a reviewer's "amount band" column looks like.
    ... the other f<i> stay numbers.
    segment     (c) pure noise: one of "seg_a" .. "seg_e" uniformly at random per row.
    label       unchanged (same values, same order), last.

Empty cells: each row is chosen with probability `missing_share` (0.10); in a chosen row
one of the remaining numeric columns, at random, is blanked (NaN, written as an empty
cell), and with probability `categorical_missing` (0.3) also one of the categorical
columns (coded, binned, segment) is blanked (None). With no numeric column left, the
chosen row's blank is categorical. No other cell is ever empty; ids, times and labels
never are.

Deterministic per seed: the columns picked and the bin edges come from a `UserTableSpec`
(`fit_spec(reference, seed)`; without `spec`, the frame itself is the reference), and
every per-row draw (time jitter, segment, which cells are blanked) is a function of
(seed, the row's index label) only. So a train part and a test part converted with the
same spec (fitted on the train part) have the same categories and bins, and a row gets the
same treatment whichever part it lands in. `parts` switches the kinds off one by one
(for ablations): any subset of PARTS; ids and timestamps are always written.
"""
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

LABEL = "label"
ID_COLUMN = "row_id"
TIME_COLUMN = "event_time"
NOISE_COLUMN = "segment"
NOISE_VALUES = ("seg_a", "seg_b", "seg_c", "seg_d", "seg_e")
BIN_LABELS = ("low", "mid", "high")
BIN_SUFFIX = "_bin"
PARTS = ("coded", "binned", "noise", "missing")
START = np.datetime64("2024-01-01T00:00:00", "s")
SECONDS_PER_ROW = 300
INFORMATIVE = 0.1  # |univariate ROC-AUC - 0.5| that makes a continuous column informative
# Columns of the per-row draws (one row of uniforms per source row).
_JITTER, _SEGMENT, _CHOSEN, _NUMERIC_CELL, _CAT_CHOSEN, _CAT_CELL = range(6)


@dataclass(frozen=True)
class UserTableSpec:
    """What `to_user_table` does to the columns, fixed from a reference frame."""

    seed: int
    features: Tuple[str, ...]                   # the numeric input's feature columns, in order
    coded: Dict[str, Dict[float, str]] = field(default_factory=dict)   # column -> value -> text
    binned: Dict[str, Tuple[float, ...]] = field(default_factory=dict)  # column -> bin edges
    parts: Tuple[str, ...] = PARTS
    missing_share: float = 0.10
    categorical_missing: float = 0.3

    def describe(self) -> Dict[str, object]:
        """JSON-able: which columns became what."""
        return {"seed": self.seed, "parts": list(self.parts),
                "coded": sorted(self.coded),
                "binned": {c + BIN_SUFFIX: [round(e, 6) for e in edges]
                           for c, edges in self.binned.items()},
                "noise": NOISE_COLUMN if "noise" in self.parts else None,
                "missing_share": self.missing_share if "missing" in self.parts else 0.0}


def _value_texts(values: Sequence[float]) -> Dict[float, str]:
    """value -> "v_<value>", with as few digits as keep the values apart."""
    for digits in (6, 10, 17):
        texts = {float(v): "v_%.*g" % (digits, v) for v in values}
        if len(set(texts.values())) == len(texts):
            return texts
    raise ValueError("values cannot be told apart as text")  # pragma: no cover


def _univariate_auc(x: np.ndarray, y: np.ndarray) -> float:
    """ROC-AUC of `x` as a score for `y` (ties count half); 0.5 without both classes."""
    pos, neg = int(y.sum()), int(len(y) - y.sum())
    if pos == 0 or neg == 0:
        return 0.5
    ranks = pd.Series(x).rank(method="average").to_numpy()
    return float((ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def fit_spec(reference: pd.DataFrame, seed: int, parts: Iterable[str] = PARTS,
             max_coded: int = 3, max_coded_values: int = 10, missing_share: float = 0.10,
             categorical_missing: float = 0.3) -> UserTableSpec:
    """The columns to code and to bin, and the bin edges, from `reference` (numeric, labelled)."""
    parts = tuple(parts)
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown parts: {sorted(unknown)}")
    parts = tuple(p for p in PARTS if p in set(parts))
    features = tuple(c for c in reference.columns if c != LABEL)
    if LABEL not in reference.columns or not features:
        raise ValueError(f"expected feature columns and {LABEL!r}")
    rng = np.random.default_rng([seed, 1])
    distinct = {c: np.unique(reference[c].dropna().to_numpy(np.float64)) for c in features}
    few = [c for c in features if len(distinct[c]) <= max_coded_values]
    coded: Dict[str, Dict[float, str]] = {}
    if "coded" in parts and few:
        # Never every feature: at least one column stays a number.
        k = min(max_coded, len(few), len(features) - 1)
        picked = sorted(rng.choice(len(few), size=k, replace=False)) if k > 0 else []
        coded = {few[i]: _value_texts(distinct[few[i]]) for i in picked}
    binned: Dict[str, Tuple[float, ...]] = {}
    continuous = [c for c in features if c not in few]
    if "binned" in parts and len(continuous) >= 2:
        y = reference[LABEL].to_numpy().astype(int)
        info = {c: abs(_univariate_auc(reference[c].to_numpy(np.float64), y) - 0.5)
                for c in continuous}
        pool = [c for c in continuous if info[c] >= INFORMATIVE] or [max(continuous,
                                                                         key=info.get)]
        k = min(2 if len(continuous) >= 8 else 1, len(pool))
        for i in sorted(rng.choice(len(pool), size=k, replace=False)):
            edges = np.unique(np.quantile(reference[pool[i]].dropna(), [1 / 3, 2 / 3]))
            binned[pool[i]] = tuple(float(e) for e in edges)
    return UserTableSpec(seed=seed, features=features, coded=coded, binned=binned,
                         parts=parts, missing_share=missing_share,
                         categorical_missing=categorical_missing)


def _row_keys(df: pd.DataFrame) -> np.ndarray:
    index = df.index
    if (index.is_unique and pd.api.types.is_integer_dtype(index.dtype)
            and (len(index) == 0 or index.min() >= 0)):
        return index.to_numpy(np.int64)
    return np.arange(len(df), dtype=np.int64)


def _draws(seed: int, keys: np.ndarray) -> np.ndarray:
    """[rows, 6] uniforms, a function of (seed, row key) only."""
    top = int(keys.max()) + 1 if len(keys) else 0
    table = np.random.default_rng([seed, 2]).random((top, 6))
    return table[keys]


def _bins(x: np.ndarray, edges: Tuple[float, ...]) -> np.ndarray:
    labels = BIN_LABELS if len(edges) == 2 else ("low", "high")[:len(edges) + 1]
    out = np.array(labels, dtype=object)[np.searchsorted(np.asarray(edges), x, side="right")]
    out[np.isnan(x)] = None
    return out


def to_user_table(df: pd.DataFrame, seed: int,
                  spec: Optional[UserTableSpec] = None) -> pd.DataFrame:
    """`df` (f0..f{d-1}, label) as a user-shaped table; see the module docstring."""
    spec = spec or fit_spec(df, seed)
    missing = [c for c in spec.features + (LABEL,) if c not in df.columns]
    if missing:
        raise ValueError(f"columns missing: {missing}")
    keys = _row_keys(df)
    u = _draws(spec.seed, keys)
    n = len(df)
    out: Dict[str, object] = {ID_COLUMN: np.array([f"r-{k:06d}" for k in keys], dtype=object)}
    times = START + (keys * SECONDS_PER_ROW
                     + np.floor(u[:, _JITTER] * SECONDS_PER_ROW).astype(np.int64))
    out[TIME_COLUMN] = np.array([str(t) + "Z" for t in times], dtype=object)
    numeric: List[str] = []
    categorical: List[str] = []
    for c in spec.features:
        x = df[c].to_numpy(np.float64)
        if c in spec.coded:
            texts = spec.coded[c]
            out[c] = np.array([texts.get(v) or _value_texts([v])[v] if not np.isnan(v) else None
                               for v in x], dtype=object)
            categorical.append(c)
        elif c in spec.binned:
            out[c + BIN_SUFFIX] = _bins(x, spec.binned[c])
            categorical.append(c + BIN_SUFFIX)
        else:
            out[c] = x.copy()
            numeric.append(c)
    if "noise" in spec.parts:
        out[NOISE_COLUMN] = np.array(NOISE_VALUES, dtype=object)[
            np.minimum((u[:, _SEGMENT] * len(NOISE_VALUES)).astype(int), len(NOISE_VALUES) - 1)]
        categorical.append(NOISE_COLUMN)
    if "missing" in spec.parts and n:
        chosen = u[:, _CHOSEN] < spec.missing_share
        rows = np.flatnonzero(chosen)
        cat_rows = rows[u[rows, _CAT_CHOSEN] < spec.categorical_missing] if numeric else rows
        if numeric:
            which = np.minimum((u[rows, _NUMERIC_CELL] * len(numeric)).astype(int),
                               len(numeric) - 1)
            for j, c in enumerate(numeric):
                out[c][rows[which == j]] = np.nan
        if categorical:
            which = np.minimum((u[cat_rows, _CAT_CELL] * len(categorical)).astype(int),
                               len(categorical) - 1)
            for j, c in enumerate(categorical):
                out[c][cat_rows[which == j]] = None
    out[LABEL] = df[LABEL].to_numpy().copy()
    return pd.DataFrame(out, index=df.index)
