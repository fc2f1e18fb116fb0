"""Transform's analysis in this process: one streaming pass over the train split in numpy.

What `preprocessing_fn` asks TFT's analyzers for is small: per numeric column the
mean and the (population) variance of its present values, per categorical column
a vocabulary (the top `max_categories` values seen at least `min_frequency`
times). Computed here from Arrow record batches (components/examples_io.py), one
batch in memory at a time, they reach `preprocessing_fn` as constants
(`custom_config["analysis"]`); with no analyzer left in the graph, TFX's
Transform writes the transform graph in place, without a Beam pipeline
(components/transform_analysis/executor.py). The transform graph is the same TFT
SavedModel the Beam analysis writes: the same z-scores, the same vocabulary files
(`transform_fn/assets/vocabulary_<column>`), the same outputs.

The rules are TFT's own (tensorflow_transform 1.16, beam/analyzer_impls.py):
- mean and variance over the values of the rows that have one (NaN skipped), as
  float32 inputs; variance is the population variance;
- vocabulary: values stripped of ASCII whitespace, an empty or missing cell is
  MISSING_CATEGORY; values that are empty or hold a line break are dropped (they
  cannot be written one per line); kept when seen >= `min_frequency` times; the
  `max_categories` largest (count, value) pairs, largest first (ties: the larger
  byte string first); an empty vocabulary holds TFT's dummy token.

A column this module cannot answer (no present value, more than one value in a
row, an unexpected type) is left out of the result; `preprocessing_fn` then asks
TFT's analyzer for it, and the executor falls back to the Beam analysis.
"""
import collections
import math
import os
from typing import Any, Dict, Iterable, List, Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from components.columns import MISSING_CATEGORY, ColumnRoles, vocabulary_name

# What custom_config["analysis"] holds (preprocessing_fn reads it).
NUMERIC, VOCABULARY = "numeric", "vocabulary"
# TFT's placeholder for an empty string vocabulary (analyzers.get_empy_vocabulary_dummy_value).
EMPTY_VOCABULARY_TOKEN = b"49d0cd50-04bb-48c0-bc6f-5b575dce351a"
_ASCII_WHITESPACE = b" \t\n\r\x0b\x0c"


class _Moments:
    """count, mean and sum of squared deviations, merged batch by batch (Chan et al.)."""

    def __init__(self):
        self.n, self.mean, self.m2 = 0, 0.0, 0.0

    def add(self, values: np.ndarray) -> None:
        values = values[~np.isnan(values)]
        n = int(values.size)
        if not n:
            return
        mean = float(values.mean())
        m2 = float(((values - mean) ** 2).sum())
        total = self.n + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.n * n / total
        self.n = total

    def result(self) -> Optional[List[float]]:
        if not self.n:
            return None
        return [self.mean, self.m2 / self.n]


def _flat_values(column: pa.Array) -> Optional[pa.Array]:
    """The values of a one-value-per-row column (TFXIO's large_list layout or plain);
    None when a row holds several values (left to TFT)."""
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        lengths = pc.fill_null(pc.list_value_length(column), 0)
        if len(column) and pc.max(lengths).as_py() > 1:
            return None
        return column.flatten()
    return column.drop_null()


def _is_number(t: pa.DataType) -> bool:
    return pa.types.is_floating(t) or pa.types.is_integer(t)


def _is_bytes(t: pa.DataType) -> bool:
    return (pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_string(t)
            or pa.types.is_large_string(t))


class Analysis:
    """Accumulates what preprocessing_fn's analyzers compute, over record batches."""

    def __init__(self, roles: ColumnRoles):
        self.roles = roles
        self._moments: Dict[str, _Moments] = {}
        self._counts: Dict[str, collections.Counter] = {k: collections.Counter()
                                                        for k in roles.categorical}
        self._unanswerable: set = set()
        self.rows = 0

    def add(self, batch: pa.RecordBatch) -> None:
        names = batch.schema.names
        self.rows += batch.num_rows
        for key in self.roles.numeric_keys(names):
            if key in self._unanswerable or key not in names:
                continue
            flat = _flat_values(batch.column(names.index(key)))
            if flat is None or not _is_number(flat.type):
                self._unanswerable.add(key)
                continue
            # As preprocessing_fn sees them: cast to float32, NaN = missing.
            values = flat.to_numpy(zero_copy_only=False).astype(np.float32).astype(np.float64)
            self._moments.setdefault(key, _Moments()).add(values)
        for key in self.roles.categorical:
            if key in self._unanswerable:
                continue
            if key not in names:
                self._counts[key][MISSING_CATEGORY.encode()] += batch.num_rows
                continue
            flat = _flat_values(batch.column(names.index(key)))
            if flat is None or not _is_bytes(flat.type):
                self._unanswerable.add(key)
                continue
            counts = self._counts[key]
            missing = batch.num_rows - len(flat) + flat.null_count
            if missing:
                counts[MISSING_CATEGORY.encode()] += missing
            if len(flat) - flat.null_count:
                found = pc.value_counts(flat.drop_null())
                for value, n in zip(found.field("values").to_pylist(),
                                    found.field("counts").to_pylist()):
                    value = value.encode() if isinstance(value, str) else value
                    value = value.strip(_ASCII_WHITESPACE) or MISSING_CATEGORY.encode()
                    counts[value] += n

    def numeric(self) -> Dict[str, List[float]]:
        """{column: [mean, variance]} for the numeric columns answered."""
        out = {}
        for key, moments in self._moments.items():
            if key in self._unanswerable:
                continue
            result = moments.result()
            if result is not None and all(math.isfinite(v) for v in result):
                out[key] = result
        return out

    def vocabularies(self) -> Dict[str, List[bytes]]:
        """{column: vocabulary, most frequent first} for the categorical columns answered."""
        out = {}
        for key, counts in self._counts.items():
            if key in self._unanswerable:
                continue
            kept = [(n, v) for v, n in counts.items()
                    if n >= self.roles.min_frequency and v and b"\n" not in v
                    and b"\r" not in v]
            kept.sort(reverse=True)
            out[key] = [v for _, v in kept[:self.roles.max_categories]] or [
                EMPTY_VOCABULARY_TOKEN]
        return out

    def answered_everything(self, keys: Iterable[str]) -> bool:
        """Whether every analyzer preprocessing_fn would run on `keys` is answered."""
        keys = list(keys)
        numeric, vocab = self.numeric(), self.vocabularies()
        return (all(k in numeric for k in self.roles.numeric_keys(keys))
                and all(k in vocab for k in self.roles.categorical))


def analyze(batches: Iterable[pa.RecordBatch], roles: ColumnRoles) -> Analysis:
    analysis = Analysis(roles)
    for batch in batches:
        analysis.add(batch)
    return analysis


def write_vocabularies(vocabularies: Dict[str, Sequence[bytes]], directory: str
                       ) -> Dict[str, str]:
    """Each vocabulary as TFT writes it (one value per line) under its TFT file name
    (the SavedModel keeps an asset under its base name); {column: path}."""
    os.makedirs(directory, exist_ok=True)
    paths = {}
    for key, values in vocabularies.items():
        path = os.path.join(directory, vocabulary_name(key))
        with open(path, "wb") as f:
            f.write(b"".join(v + b"\n" for v in values))
        paths[key] = path
    return paths


def custom_config_analysis(analysis: Analysis, vocabulary_dir: str) -> Dict[str, Any]:
    """What the executor adds to preprocessing_fn's custom_config as "analysis"."""
    return {NUMERIC: analysis.numeric(),
            VOCABULARY: write_vocabularies(analysis.vocabularies(), vocabulary_dir)}
