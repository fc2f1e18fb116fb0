"""Trainer's `run_fn`: fit the autoencoder on normal training rows, export it.

Transform runs with `materialize=False`; the Trainer reads the raw
tf.Examples ExampleGen wrote and applies the TFT layer inside tf.data, so the
training data is never transformed and written to disk twice.
"""
import json
import logging
import os
from typing import Dict, List, Optional, Tuple

import keras
import tensorflow as tf
import tensorflow_transform as tft

from components import features, signatures
from components.model import build_autoencoder, layer_sizes
from pipeline.config import PipelineConfig, from_json

PARSE_BATCH = 1024
TRAINING_SUMMARY = "training_summary.json"


def _files(file_pattern) -> List[str]:
    patterns = file_pattern if isinstance(file_pattern, (list, tuple)) else [file_pattern]
    files = sorted(f for p in patterns for f in tf.io.gfile.glob(p))
    if not files:
        raise ValueError(f"no training files match {file_pattern}")
    return files


def feature_matrix_dataset(file_pattern, tft_output: tft.TFTransformOutput,
                           feature_keys: List[str], label_column: Optional[str],
                           normal_only: bool) -> tf.data.Dataset:
    """Unbatched dataset of z-scored feature vectors (float32 [d]) from raw examples.

    With `normal_only`, rows whose label is not 0 are dropped: the autoencoder
    learns what normal looks like.
    """
    raw_spec = tft_output.raw_feature_spec()
    tft_layer = tft_output.transform_features_layer()
    keys = list(feature_keys) + ([label_column] if label_column else [])
    spec = {k: raw_spec[k] for k in keys}

    def to_matrix(serialized):
        raw = tf.io.parse_example(serialized, spec)
        transformed = tft_layer({k: raw[k] for k in feature_keys})
        x = tf.concat([tf.reshape(tf.cast(transformed[features.transformed_name(k)], tf.float32),
                                  [-1, 1]) for k in feature_keys], axis=1)
        if normal_only and label_column:
            keep = tf.equal(tf.reshape(raw[label_column], [-1]), 0)
            x = tf.boolean_mask(x, keep)
        return x

    ds = tf.data.TFRecordDataset(_files(file_pattern), compression_type="GZIP")
    return (ds.batch(PARSE_BATCH)
              .map(to_matrix, num_parallel_calls=tf.data.AUTOTUNE)
              .unbatch())


def split_train_validation(ds: tf.data.Dataset, validation_split: float
                           ) -> Tuple[tf.data.Dataset, Optional[tf.data.Dataset]]:
    """Deterministic split: of every 100 rows, the first round(100*split) validate."""
    if validation_split <= 0:
        return ds, None
    cut = int(round(100 * validation_split))
    indexed = ds.enumerate()
    is_val = lambda i, x: tf.math.floormod(i, 100) < cut  # noqa: E731
    val = indexed.filter(is_val).map(lambda i, x: x)
    train = indexed.filter(lambda i, x: tf.logical_not(is_val(i, x))).map(lambda i, x: x)
    return train, val


def _as_xy(ds: tf.data.Dataset, batch_size: int, shuffle: bool, seed: int,
           n_rows: int) -> tf.data.Dataset:
    if shuffle:
        ds = ds.shuffle(min(max(n_rows, 1), 100_000), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).map(lambda x: (x, x)).prefetch(tf.data.AUTOTUNE)


def _count(ds: tf.data.Dataset) -> int:
    return int(ds.reduce(tf.constant(0, tf.int64), lambda n, _: n + 1).numpy())


def train(cfg: PipelineConfig, train_files, tft_output: tft.TFTransformOutput,
          log_dir: Optional[str] = None) -> Tuple[keras.Model, List[str], Dict]:
    """Fits the autoencoder; returns (model, feature_keys, training summary)."""
    mcfg, label = cfg.model, cfg.data.label_column
    keras.utils.set_random_seed(mcfg.seed)
    feature_keys = features.feature_keys(tft_output.raw_feature_spec().keys(), label)

    rows = feature_matrix_dataset(train_files, tft_output, feature_keys, label,
                                  normal_only=bool(label)).cache()
    train_ds, val_ds = split_train_validation(rows, mcfg.validation_split)
    n_train = _count(train_ds)
    n_val = _count(val_ds) if val_ds is not None else 0
    if n_train == 0:
        raise ValueError("no training rows" + (f" with {label} == 0" if label else ""))

    model = build_autoencoder(len(feature_keys), mcfg)
    callbacks = []
    monitor = "val_loss" if n_val else "loss"
    if mcfg.early_stopping_patience > 0:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=monitor, patience=mcfg.early_stopping_patience, restore_best_weights=True))
    if log_dir:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=log_dir, update_freq="epoch"))
    history = model.fit(
        _as_xy(train_ds, mcfg.batch_size, True, mcfg.seed, n_train),
        validation_data=_as_xy(val_ds, mcfg.batch_size, False, mcfg.seed, n_val) if n_val else None,
        epochs=mcfg.epochs, callbacks=callbacks, verbose=2)
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    summary = {
        "train_rows": n_train,
        "validation_rows": n_val,
        "n_features": len(feature_keys),
        "layer_sizes": layer_sizes(len(feature_keys), mcfg),
        "epochs_run": len(hist.get("loss", [])),
        "best_epoch": (int(min(range(len(hist[monitor])), key=hist[monitor].__getitem__)) + 1
                       if hist.get(monitor) else None),
        "history": hist,
    }
    return model, feature_keys, summary


def run_fn(fn_args) -> None:
    """TFX Trainer entry point (GenericExecutor)."""
    cfg: PipelineConfig = from_json(fn_args.custom_config["pipeline_config"])
    tft_output = tft.TFTransformOutput(fn_args.transform_output)
    model, feature_keys, summary = train(cfg, fn_args.train_files, tft_output,
                                         log_dir=fn_args.model_run_dir)
    signatures.export_serving_model(
        model, tft_output, feature_keys, fn_args.serving_model_dir,
        metadata={"label_column": cfg.data.label_column, "model": cfg.to_dict()["model"],
                  "train_rows": summary["train_rows"]})
    signatures.write_json(os.path.join(fn_args.model_run_dir, TRAINING_SUMMARY), summary)
    signatures.write_json(os.path.join(fn_args.serving_model_dir, "assets", TRAINING_SUMMARY),
                          summary)
    logging.info("Trained on %d rows: %s", summary["train_rows"], json.dumps(
        {k: v for k, v in summary.items() if k != "history"}))
