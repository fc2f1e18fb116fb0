"""Transform's `preprocessing_fn`: every model input of every role, computed by TFT.

custom_config = {"columns": ColumnRoles} (pipeline/dag.py; components/columns.py), and
{"analysis": ...} when the executor computed the analyzers' results in this process
(components/transform_analysis/analysis.py: then the graph holds them as constants):

    numeric      `<col>_xf`: the z-score over the train split's present values
                 (tft.mean / tft.var), 0 for a missing value (imputed with the
                 train mean); `<col>__missing_xf`: 1.0 where the value is missing,
                 for the columns in `roles.indicators`
    categorical  `<col>_xf`: the index in TFT's vocabulary (top `max_categories`
                 values seen at least `min_frequency` times in the train split;
                 the rest, and values never seen, share one out-of-vocabulary
                 index); an empty cell is the category "__missing__"
    time         `<col>__hour_sin_xf`, `..._cos`, `<col>__weekday_sin_xf`, `..._cos`
                 from an ISO 8601 timestamp (its local time); 0 when missing
    label        passed through, never a model input

The statistics and vocabularies are embedded in the serving graph through
`transform_features_layer()`, so the exported model takes raw values. A
column may reach this function dense (always present in the data) or sparse
(sometimes missing): both are handled, and at serving a dense column's
missing value arrives as NaN / "" (components/model/export.py).
"""
import math
from typing import Any, Dict, Optional

import tensorflow as tf
import tensorflow_transform as tft

from components.columns import (MISSING_CATEGORY, OOV_BUCKETS, TIME_PARTS, ColumnRoles,
                                indicator_name, time_part_name, transformed_name,
                                vocabulary_name)
from components.transform_analysis.analysis import NUMERIC, VOCABULARY


def _batch_size(x) -> tf.Tensor:
    shape = x.dense_shape if isinstance(x, tf.SparseTensor) else tf.shape(x, out_type=tf.int64)
    return shape[0]


def _dense(x, default) -> tf.Tensor:
    """[batch] values of a one-value feature; `default` where it has none."""
    if isinstance(x, tf.SparseTensor):
        x = tf.sparse.reset_shape(x, [_batch_size(x), 1])
        x = tf.sparse.to_dense(x, default_value=default)
    return tf.reshape(x, [-1])


def _present_values(x: tf.Tensor) -> tf.SparseTensor:
    """The non-NaN entries of [batch] `x`, for analyzers that must skip missing values."""
    idx = tf.where(tf.logical_not(tf.math.is_nan(x)))
    return tf.SparseTensor(tf.concat([idx, tf.zeros_like(idx)], axis=1), tf.gather_nd(x, idx),
                           tf.stack([tf.shape(x, out_type=tf.int64)[0], tf.constant(1, tf.int64)]))


def _numeric(x, may_be_missing: bool, moments=None):
    """(z-score with 0 for missing values, 1.0-where-missing) of one numeric column;
    `moments`: its [mean, variance] from the in-process analysis, else TFT's analyzers."""
    values = tf.cast(_dense(tf.cast(x, tf.float32) if not isinstance(x, tf.SparseTensor)
                            else tf.SparseTensor(x.indices, tf.cast(x.values, tf.float32),
                                                 x.dense_shape), math.nan), tf.float32)
    missing = tf.math.is_nan(values)
    if moments is not None:
        mean, var = tf.constant(moments[0], tf.float32), tf.constant(moments[1], tf.float32)
    elif isinstance(x, tf.SparseTensor) or may_be_missing:
        present = _present_values(values)
        mean, var = tft.mean(present), tft.var(present)
    else:  # always present in the data: the plain analyzers
        mean, var = tft.mean(values), tft.var(values)
    std = tf.sqrt(tf.cast(var, tf.float32))
    z = (values - tf.cast(mean, tf.float32)) / tf.where(std > 0, std, tf.ones_like(std))
    return tf.where(missing, tf.zeros_like(z), z), tf.cast(missing, tf.float32)


def _category(x) -> tf.Tensor:
    """[batch] strings, trimmed; empty and missing cells become the missing category."""
    s = tf.strings.strip(_dense(x, ""))
    return tf.where(tf.equal(s, ""), tf.fill(tf.shape(s), MISSING_CATEGORY), s)


def _days_from_civil(y, m, d):
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y = y - tf.cast(m <= 2, tf.int64)
    era = tf.math.floordiv(y, 400)
    yoe = y - era * 400
    mp = tf.math.floormod(m + 9, 12)
    doy = tf.math.floordiv(153 * mp + 2, 5) + d - 1
    doe = yoe * 365 + tf.math.floordiv(yoe, 4) - tf.math.floordiv(yoe, 100) + doy
    return era * 146097 + doe - 719468


def time_parts(x) -> Dict[str, tf.Tensor]:
    """hour-of-day and day-of-week of ISO 8601 timestamps as sin/cos pairs; 0 where the
    timestamp is missing or unreadable (a date alone has no hour: its hour parts are 0)."""
    s = tf.strings.strip(_dense(x, ""))
    ok = tf.strings.regex_full_match(s, r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}.*)?")
    has_time = tf.logical_and(ok, tf.strings.length(s) >= 16)
    # Every string made "YYYY-MM-DD?HH:MM" so the fixed positions below parse.
    safe = tf.where(has_time, s, tf.where(ok, tf.strings.join([tf.strings.substr(s, 0, 10),
                                                                "T00:00"]),
                                          tf.fill(tf.shape(s), "1970-01-01T00:00")))

    def number(start, length):
        return tf.strings.to_number(tf.strings.substr(safe, start, length), tf.int64)

    hour = tf.cast(number(11, 2), tf.float32) + tf.cast(number(14, 2), tf.float32) / 60.0
    weekday = tf.math.floormod(_days_from_civil(number(0, 4), number(5, 2), number(8, 2)) + 3, 7)
    angle_h = 2 * math.pi * hour / 24.0
    angle_d = 2 * math.pi * tf.cast(weekday, tf.float32) / 7.0
    valid_h, valid_d = tf.cast(has_time, tf.float32), tf.cast(ok, tf.float32)
    values = {"hour_sin": tf.sin(angle_h) * valid_h, "hour_cos": tf.cos(angle_h) * valid_h,
              "weekday_sin": tf.sin(angle_d) * valid_d, "weekday_cos": tf.cos(angle_d) * valid_d}
    return {p: values[p] for p in TIME_PARTS}


def preprocessing_fn(inputs: Dict[str, Any],
                     custom_config: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    roles = ColumnRoles.from_dict((custom_config or {}).get("columns"))
    # The analyzers' results computed in this process, if the executor did
    # (components/transform_analysis/analysis.py); a column without one is analysed by TFT.
    analysis = (custom_config or {}).get("analysis") or {}
    moments, vocabularies = analysis.get(NUMERIC) or {}, analysis.get(VOCABULARY) or {}
    outputs = {}
    indicators = set(roles.indicators)
    for key in roles.numeric_keys(inputs.keys()):
        z, missing = _numeric(inputs[key], key in indicators, moments.get(key))
        outputs[transformed_name(key)] = z
        if key in indicators:
            outputs[transformed_name(indicator_name(key))] = missing
    for key in roles.categorical:
        if key in vocabularies:  # the same lookup TFT's compute_and_apply_vocabulary builds
            outputs[transformed_name(key)] = tft.apply_vocabulary(
                _category(inputs[key]), tf.constant(vocabularies[key]),
                num_oov_buckets=OOV_BUCKETS)
            continue
        outputs[transformed_name(key)] = tft.compute_and_apply_vocabulary(
            _category(inputs[key]), top_k=roles.max_categories,
            frequency_threshold=roles.min_frequency, num_oov_buckets=OOV_BUCKETS,
            vocab_filename=vocabulary_name(key))
    for key in roles.time_features:
        for part, value in time_parts(inputs[key]).items():
            outputs[transformed_name(time_part_name(key, part))] = value
    if roles.label and roles.label in inputs:
        # Passed through for evaluation and for training on normal rows only;
        # never a model input.
        outputs[roles.label] = inputs[roles.label]
    return outputs
