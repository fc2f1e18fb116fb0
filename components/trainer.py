"""Trainer's `run_fn`: fit the autoencoder on normal training rows, export it.

Transform runs with `materialize=False`; the Trainer reads the raw examples
ExampleGen wrote (Parquet or TFRecords, components/examples_io.py) in record
batches and applies the TFT layer to each, so the training data is never
transformed and written to disk twice. The z-scored rows are then fed to
Keras as arrays, exactly like the plain recipe's (`TrainingData`), or
streamed every epoch when they exceed `model.memory_budget_mb`.
"""
import dataclasses
import json
import logging
import os
import time
from typing import Dict, Iterator, List, Optional, Tuple

import keras
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft

from components import examples_io, features, signatures
from components.model import build_autoencoder, layer_sizes
from pipeline.config import PipelineConfig, from_json

PARSE_BATCH = 65536
EVAL_BATCH = 8192
TRAINING_SUMMARY = "training_summary.json"


def split_uris(file_pattern) -> List[str]:
    """The split folders behind the Trainer's file patterns (`.../Split-train/*`)."""
    patterns = file_pattern if isinstance(file_pattern, (list, tuple)) else [file_pattern]
    uris = [p[:-2] if p.endswith("/*") else p for p in patterns]
    if not uris:
        raise ValueError("no training examples")
    return uris


def transformed_blocks(file_pattern, tft_output: tft.TFTransformOutput,
                       feature_keys: List[str], label_column: Optional[str],
                       normal_only: bool, validation_split: float
                       ) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """(train rows, validation rows) per record batch: z-scored float32 [n, d].

    The split is streamed in record batches (components/examples_io.py:
    Parquet or TFRecords); each batch goes through the TFT layer as one
    tensor per column. With `normal_only`, rows whose label is not 0 are
    dropped first: the autoencoder learns what normal looks like. Validation
    rows are deterministic: of every 100 (normal) rows in stream order, the
    first round(100 * validation_split).
    """
    raw_spec = tft_output.raw_feature_spec()
    tft_layer = tft_output.transform_features_layer()
    keys = list(feature_keys) + ([label_column] if label_column else [])
    cut = int(round(100 * validation_split))
    seen = 0
    for uri in split_uris(file_pattern):
        for batch in examples_io.iter_record_batches(uri, keys, PARSE_BATCH):
            cols = {k: examples_io.column_values(batch, k) for k in keys}
            keep = None
            if normal_only and label_column:
                keep = cols[label_column] == 0
            raw = {}
            for k in feature_keys:
                v = cols[k] if keep is None else cols[k][keep]
                raw[k] = tf.reshape(tf.constant(v.astype(raw_spec[k].dtype.as_numpy_dtype,
                                                         copy=False)),
                                    [-1] + list(raw_spec[k].shape))
            n = int(next(iter(raw.values())).shape[0]) if raw else 0
            if n == 0:
                continue
            out = tft_layer(raw)
            x = np.concatenate([np.reshape(out[features.transformed_name(k)].numpy(), (-1, 1))
                                for k in feature_keys], axis=1).astype(np.float32, copy=False)
            is_val = (np.arange(seen, seen + n) % 100) < cut
            seen += n
            yield x[~is_val], x[is_val]


class TrainingData:
    """The z-scored training and validation rows, in memory or streamed.

    In memory (the default while 4 * d bytes per row fit in
    `model.memory_budget_mb`): two float32 matrices, fed to Keras like the
    plain recipe's arrays (shuffled every epoch). Beyond the budget the
    examples are read again every epoch as a tf.data stream of record
    batches, rows shuffled within each batch and the batches re-cut to the
    training batch size; at most `STREAM_VALIDATION_ROWS` validation rows are
    kept (for early stopping). Memory then stays at a few batches.
    """

    STREAM_VALIDATION_ROWS = 200_000

    def __init__(self, blocks_fn, n_features: int, budget_bytes: int):
        self._blocks_fn, self._d = blocks_fn, n_features
        train, val, size = [], [], 0
        self.streaming = False
        self.n_train = self.n_val = 0
        for t, v in blocks_fn():
            if not self.streaming:
                train.append(t)
                size += t.nbytes + v.nbytes
                if size > budget_bytes:
                    self.streaming, train = True, []
            if not self.streaming or self.n_val < self.STREAM_VALIDATION_ROWS:
                val.append(v)
            self.n_train += len(t)
            self.n_val += len(v)
        self.x_val = (np.concatenate(val) if val else np.zeros((0, n_features), np.float32))
        if self.streaming:
            self.x_val = self.x_val[:self.STREAM_VALIDATION_ROWS]
            self.x_train = None
        else:
            self.x_train = (np.concatenate(train) if train
                            else np.zeros((0, n_features), np.float32))

    def sample_train(self, max_rows: Optional[int] = None) -> np.ndarray:
        """The first training rows (no validation rows exist: validation_split 0)."""
        max_rows = max_rows or self.STREAM_VALIDATION_ROWS
        if self.x_train is not None:
            return self.x_train[:max_rows]
        rows, n = [], 0
        for t, _ in self._blocks_fn():
            rows.append(t)
            n += len(t)
            if n >= max_rows:
                break
        return np.concatenate(rows)[:max_rows] if rows else np.zeros((0, self._d), np.float32)

    def train_dataset(self, batch_size: int, seed: int) -> tf.data.Dataset:
        """The streamed training set (only when `streaming`)."""
        d = self._d

        def gen():
            for t, _ in self._blocks_fn():
                if len(t):
                    yield t

        ds = tf.data.Dataset.from_generator(
            gen, output_signature=tf.TensorSpec([None, d], tf.float32))
        ds = ds.map(lambda x: tf.random.shuffle(x, seed=seed)).rebatch(batch_size)
        return ds.map(lambda x: (x, x)).prefetch(tf.data.AUTOTUNE)


def train(cfg: PipelineConfig, train_files, tft_output: tft.TFTransformOutput,
          log_dir: Optional[str] = None) -> Tuple[List[keras.Model], List[str], Dict]:
    """Fits the autoencoder(s); returns (models, feature_keys, training summary)."""
    mcfg, label = cfg.model, cfg.data.label_column
    keras.utils.set_random_seed(mcfg.seed)
    feature_keys = features.feature_keys(tft_output.raw_feature_spec().keys(), label)

    t0 = time.time()
    data = TrainingData(
        lambda: transformed_blocks(train_files, tft_output, feature_keys, label,
                                   normal_only=bool(label),
                                   validation_split=mcfg.validation_split),
        len(feature_keys), int(mcfg.memory_budget_mb) << 20)
    n_train, n_val = data.n_train, len(data.x_val)
    if n_train == 0:
        raise ValueError("no training rows" + (f" with {label} == 0" if label else ""))

    read_seconds = time.time() - t0
    t0 = time.time()
    batch_size = mcfg.effective_batch_size(n_train)
    validation = (data.x_val, data.x_val) if n_val else None
    if data.streaming:
        logging.info("training data (%d rows) exceeds model.memory_budget_mb=%d: streaming it "
                     "every epoch", n_train, mcfg.memory_budget_mb)
    models, members = [], []
    for i in range(mcfg.ensemble_size):
        # Member i: seed + i, the same data; member 0 is the single model.
        member_cfg = dataclasses.replace(mcfg, seed=mcfg.seed + i)
        keras.utils.set_random_seed(member_cfg.seed)
        model = build_autoencoder(len(feature_keys), member_cfg)
        history = _fit(model, data, validation, batch_size, member_cfg,
                       log_dir if i == 0 else None)
        models.append(model)
        members.append({k: [float(v) for v in vals] for k, vals in history.history.items()})
    fit_seconds = time.time() - t0
    monitor = "val_loss" if n_val else "loss"
    hist = members[0]

    def best_epoch(h):
        return (int(min(range(len(h[monitor])), key=h[monitor].__getitem__)) + 1
                if h.get(monitor) else None)

    scale = None
    if mcfg.normalize_feature_errors:
        scale = feature_error_scale(models, data.x_val if n_val else data.sample_train())
    summary = {
        "train_rows": n_train,
        "validation_rows": n_val,
        "validation_rows_total": data.n_val,
        "streamed": data.streaming,
        "batch_size": batch_size,
        "n_features": len(feature_keys),
        "layer_sizes": layer_sizes(len(feature_keys), mcfg),
        "ensemble_size": len(models),
        "epochs_run": len(hist.get("loss", [])),
        "best_epoch": best_epoch(hist),
        "history": hist,
        "members": [{"seed": mcfg.seed + i, "epochs_run": len(h.get("loss", [])),
                     "best_epoch": best_epoch(h),
                     "best_" + monitor: min(h[monitor]) if h.get(monitor) else None}
                    for i, h in enumerate(members)],
        "feature_error_scale": None if scale is None else [float(v) for v in scale],
        "seconds": {"read_and_transform": round(read_seconds, 2), "fit": round(fit_seconds, 2)},
    }
    return models, feature_keys, summary


def _fit(model, data: "TrainingData", validation, batch_size: int, mcfg, log_dir):
    callbacks = []
    monitor = "val_loss" if validation is not None else "loss"
    if mcfg.early_stopping_patience > 0:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=monitor, patience=mcfg.early_stopping_patience, restore_best_weights=True))
    if log_dir:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=log_dir, update_freq="epoch"))
    if data.streaming:
        return model.fit(data.train_dataset(batch_size, mcfg.seed),
                         validation_data=validation, validation_batch_size=EVAL_BATCH,
                         epochs=mcfg.epochs, callbacks=callbacks, verbose=2)
    return model.fit(data.x_train, data.x_train, batch_size=batch_size, shuffle=True,
                     validation_data=validation,
                     validation_batch_size=max(batch_size, EVAL_BATCH),
                     epochs=mcfg.epochs, callbacks=callbacks, verbose=2)


FEATURE_SCALE_FLOOR = 1e-6  # relative to the mean scale: a perfectly reconstructed
                            # feature must not turn tiny errors into huge ones


def feature_error_scale(models, x: np.ndarray) -> np.ndarray:
    """Per-feature mean squared error of the (ensemble's averaged) reconstruction on `x`."""
    if len(x) == 0:
        raise ValueError("no rows to normalise the feature errors on")
    sq = np.zeros(x.shape[1], dtype=np.float64)
    for start in range(0, len(x), EVAL_BATCH * 8):
        xb = x[start:start + EVAL_BATCH * 8]
        avg = sum((xb - np.asarray(m(xb, training=False))) ** 2 for m in models) / len(models)
        sq += avg.sum(axis=0)
    scale = sq / len(x)
    floor = max(float(scale.mean()) * FEATURE_SCALE_FLOOR, 1e-12)
    return np.maximum(scale, floor)


def run_fn(fn_args) -> None:
    """TFX Trainer entry point (GenericExecutor)."""
    cfg: PipelineConfig = from_json(fn_args.custom_config["pipeline_config"])
    tft_output = tft.TFTransformOutput(fn_args.transform_output)
    models, feature_keys, summary = train(cfg, fn_args.train_files, tft_output,
                                          log_dir=fn_args.model_run_dir)
    t0 = time.time()
    signatures.export_serving_model(
        models, tft_output, feature_keys, fn_args.serving_model_dir,
        metadata={"label_column": cfg.data.label_column, "model": cfg.to_dict()["model"],
                  "train_rows": summary["train_rows"],
                  "feature_error_scale": summary["feature_error_scale"]},
        model_config=cfg.model, feature_error_scale=summary["feature_error_scale"])
    summary["seconds"]["export"] = round(time.time() - t0, 2)
    signatures.write_json(os.path.join(fn_args.model_run_dir, TRAINING_SUMMARY), summary)
    signatures.write_json(os.path.join(fn_args.serving_model_dir, "assets", TRAINING_SUMMARY),
                          summary)
    logging.info("Trained on %d rows: %s", summary["train_rows"], json.dumps(
        {k: v for k, v in summary.items() if k != "history"}))
