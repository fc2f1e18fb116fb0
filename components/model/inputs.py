"""The model's input vector, and how its reconstruction error is grouped back by column.

Transform's outputs (components/transform.py) become one float32 vector per
row, column by column in the order of `InputLayout.columns`:

    numeric column      its z-score [, its missing-indicator]       1 or 2 inputs
    categorical column  one-hot of its vocabulary index              vocabulary + 1 (OOV)
    time column         hour sin, hour cos, weekday sin, weekday cos 4 inputs

The autoencoder reconstructs the whole vector; a row's squared errors are
summed back per original column (`grouping()`): a numeric column's error is
its squared z-error (plus its indicator's), a categorical column's half the
squared error over its one-hot group and a time column's half the squared
error over its four inputs. So every column's error is on one scale -- a
categorical column is at most ~1 when confidently wrong, however many
categories it has, as a numeric column is 1 at one standard deviation off --
and one wide categorical cannot drown the rest. `feature_errors` and
`top_features` name the original columns.

No TFX here; TensorFlow only inside `matrix`.
"""
from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Sequence, Tuple

import numpy as np

from components.columns import (OOV_BUCKETS, TIME_PARTS, ColumnRoles, indicator_name,
                                time_part_name, transformed_name)

NUMERIC, CATEGORICAL, TIME = "numeric", "categorical", "time"
GROUP_WEIGHT = {NUMERIC: 1.0, CATEGORICAL: 0.5, TIME: 0.5}


@dataclass(frozen=True)
class ColumnInputs:
    column: str             # the original column
    kind: str               # numeric | categorical | time
    keys: Tuple[str, ...]   # Transform's outputs feeding the model, in order
    width: int              # model inputs it takes

    def to_dict(self) -> Dict[str, Any]:
        return {"column": self.column, "kind": self.kind, "keys": list(self.keys),
                "width": self.width}


@dataclass(frozen=True)
class InputLayout:
    columns: Tuple[ColumnInputs, ...]

    @property
    def width(self) -> int:
        return sum(c.width for c in self.columns)

    @property
    def names(self) -> List[str]:
        """The original columns, in the order of `feature_errors`."""
        return [c.column for c in self.columns]

    def grouping(self) -> np.ndarray:
        """[width, columns] float32: squared input errors @ grouping = per-column errors."""
        g = np.zeros((self.width, len(self.columns)), dtype=np.float32)
        start = 0
        for j, c in enumerate(self.columns):
            g[start:start + c.width, j] = GROUP_WEIGHT[c.kind]
            start += c.width
        return g

    def is_identity(self) -> bool:
        return all(c.kind == NUMERIC and c.width == 1 for c in self.columns)

    def to_dict(self) -> Dict[str, Any]:
        return {"columns": [c.to_dict() for c in self.columns]}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "InputLayout":
        return cls(tuple(ColumnInputs(c["column"], c["kind"], tuple(c["keys"]), int(c["width"]))
                         for c in values["columns"]))


def build_layout(roles: ColumnRoles, raw_keys: Sequence[str],
                 vocabulary_sizes: Mapping[str, int]) -> InputLayout:
    """The layout for `roles` (`raw_keys`: the raw features, for roles without roles);
    `vocabulary_sizes`: each categorical column's vocabulary size (TFT's)."""
    out = []
    indicators = set(roles.indicators)
    for c in roles.numeric_keys(raw_keys):
        keys = (transformed_name(c),) + ((transformed_name(indicator_name(c)),)
                                         if c in indicators else ())
        out.append(ColumnInputs(c, NUMERIC, keys, len(keys)))
    for c in roles.categorical:
        out.append(ColumnInputs(c, CATEGORICAL, (transformed_name(c),),
                                int(vocabulary_sizes[c]) + OOV_BUCKETS))
    for c in roles.time_features:
        out.append(ColumnInputs(c, TIME, tuple(transformed_name(time_part_name(c, p))
                                               for p in TIME_PARTS), len(TIME_PARTS)))
    return InputLayout(tuple(out))


def matrix(transformed: Mapping[str, Any], layout: InputLayout):
    """[batch, width] float32 model inputs from Transform's outputs (TensorFlow)."""
    import tensorflow as tf

    parts = []
    for c in layout.columns:
        if c.kind == CATEGORICAL:
            index = tf.reshape(tf.cast(transformed[c.keys[0]], tf.int64), [-1])
            parts.append(tf.one_hot(index, c.width, dtype=tf.float32))
        else:
            parts += [tf.reshape(tf.cast(transformed[k], tf.float32), [-1, 1]) for k in c.keys]
    return tf.concat(parts, axis=1)


def matrix_np(transformed: Mapping[str, np.ndarray], layout: InputLayout) -> np.ndarray:
    """The same as `matrix`, in numpy (the Trainer's data path)."""
    n = len(np.reshape(transformed[layout.columns[0].keys[0]], [-1]))
    out = np.zeros((n, layout.width), dtype=np.float32)
    start = 0
    for c in layout.columns:
        if c.kind == CATEGORICAL:
            index = np.reshape(transformed[c.keys[0]], [-1]).astype(np.int64)
            out[np.arange(n), start + np.clip(index, 0, c.width - 1)] = 1.0
        else:
            for i, k in enumerate(c.keys):
                out[:, start + i] = np.reshape(transformed[k], [-1])
        start += c.width
    return out
