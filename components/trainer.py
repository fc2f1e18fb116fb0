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
from components.evaluator import thresholds
from components.model import build_autoencoder, layer_sizes
from pipeline.config import (PipelineConfig, candidate_configs, describe_candidate,
                             from_json)

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


class _BatchTransformer:
    """Raw record batches -> z-scored float32 matrices through the TFT layer."""

    def __init__(self, tft_output: tft.TFTransformOutput, feature_keys: List[str]):
        self._spec = tft_output.raw_feature_spec()
        self._layer = tft_output.transform_features_layer()
        self._keys = list(feature_keys)

    def __call__(self, cols: Dict[str, np.ndarray], keep: Optional[np.ndarray] = None
                 ) -> np.ndarray:
        raw = {}
        for k in self._keys:
            v = cols[k] if keep is None else cols[k][keep]
            raw[k] = tf.reshape(tf.constant(v.astype(self._spec[k].dtype.as_numpy_dtype,
                                                     copy=False)),
                                [-1] + list(self._spec[k].shape))
        if not raw or int(next(iter(raw.values())).shape[0]) == 0:
            return np.zeros((0, len(self._keys)), np.float32)
        out = self._layer(raw)
        return np.concatenate([np.reshape(out[features.transformed_name(k)].numpy(), (-1, 1))
                               for k in self._keys], axis=1).astype(np.float32, copy=False)


def _column_batches(file_pattern, keys: List[str]) -> Iterator[Dict[str, np.ndarray]]:
    """{column: values} per record batch of a split, across its folders."""
    for uri in split_uris(file_pattern):
        for batch in examples_io.iter_record_batches(uri, keys, PARSE_BATCH):
            yield {k: examples_io.column_values(batch, k) for k in keys}


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
    transform = _BatchTransformer(tft_output, feature_keys)
    keys = list(feature_keys) + ([label_column] if label_column else [])
    cut = int(round(100 * validation_split))
    seen = 0
    for cols in _column_batches(file_pattern, keys):
        keep = (cols[label_column] == 0) if normal_only and label_column else None
        x = transform(cols, keep)
        n = len(x)
        if n == 0:
            continue
        is_val = (np.arange(seen, seen + n) % 100) < cut
        seen += n
        yield x[~is_val], x[is_val]


def labelled_rows(file_pattern, tft_output: tft.TFTransformOutput, feature_keys: List[str],
                  label_column: str, max_rows: int) -> Tuple[np.ndarray, np.ndarray]:
    """(z-scored rows, 0/1 labels) of a split, its first `max_rows` rows."""
    transform = _BatchTransformer(tft_output, feature_keys)
    keys = list(feature_keys) + [label_column]
    xs, ys, n = [], [], 0
    for cols in _column_batches(file_pattern, keys):
        xs.append(transform(cols))
        ys.append((cols[label_column] != 0).astype(np.int64))
        n += len(xs[-1])
        if n >= max_rows:
            break
    if not xs:
        return np.zeros((0, len(feature_keys)), np.float32), np.zeros(0, np.int64)
    return np.concatenate(xs)[:max_rows], np.concatenate(ys)[:max_rows]


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
          log_dir: Optional[str] = None, eval_files=None
          ) -> Tuple[List[keras.Model], List[str], Dict]:
    """Fits the autoencoder(s); returns (models, feature_keys, training summary).

    With `model.candidates` and labelled eval rows (at least
    `model.select_min_anomalies` anomalies in `eval_files`), one model per
    candidate is fitted and the one whose errors rank the eval split's
    anomalies best (ROC-AUC) is kept; otherwise only the first is fitted.
    """
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
    configs = candidate_configs(mcfg)
    overrides = list(mcfg.candidates) or [{}]
    eval_rows, why_single = None, None
    if len(configs) > 1:
        if label and eval_files:
            eval_rows = labelled_rows(eval_files, tft_output, feature_keys, label,
                                      SELECTION_MAX_ROWS)
            n_pos = int(eval_rows[1].sum())
            if n_pos < mcfg.select_min_anomalies or n_pos == len(eval_rows[1]):
                why_single = (f"{n_pos} labelled anomalies in the eval split (< "
                              f"select_min_anomalies={mcfg.select_min_anomalies}): first candidate")
        else:
            why_single = "no labels: first candidate"
        if why_single:
            configs, overrides, eval_rows = configs[:1], overrides[:1], None
    fitted = []
    for i, cand_cfg in enumerate(configs):
        fitted.append(_fit_members(cand_cfg, data, validation, batch_size, len(feature_keys),
                                   log_dir if i == 0 else None))
    chosen = 0
    selection = {"candidates": [{"overrides": dict(o), "roc_auc": None} for o in overrides],
                 "chosen": 0, "why": why_single or "one candidate"}
    if eval_rows is not None:
        x_eval, y_eval = eval_rows
        scales = [_error_scale(c, m, data) for c, (m, _) in zip(configs, fitted)]
        aucs = [thresholds.roc_auc(row_errors(m, x_eval, sc), y_eval)
                for (m, _), sc in zip(fitted, scales)]
        chosen = max(range(len(aucs)), key=lambda i: (aucs[i], -i))  # ties: the earlier
        for entry, auc in zip(selection["candidates"], aucs):
            entry["roc_auc"] = round(float(auc), 6)
        selection.update(
            chosen=chosen, eval_rows=int(len(y_eval)), eval_anomalies=int(y_eval.sum()),
            why=f"highest ROC-AUC on {len(y_eval)} labelled eval rows: "
                + "; ".join(f"{describe_candidate(o)} {a:.4f}" for o, a in zip(overrides, aucs)))
        logging.info("Trainer selection: candidate %d (%s): %s", chosen,
                     describe_candidate(overrides[chosen]), selection["why"])
    final_cfg = configs[chosen]
    models, members = fitted[chosen]
    fit_seconds = time.time() - t0
    monitor = "val_loss" if n_val else "loss"
    hist = members[0]

    def best_epoch(h):
        return (int(min(range(len(h[monitor])), key=h[monitor].__getitem__)) + 1
                if h.get(monitor) else None)

    # The chosen candidate's scale, computed once (during selection if it ran).
    scale = scales[chosen] if eval_rows is not None else _error_scale(final_cfg, models, data)
    summary = {
        "train_rows": n_train,
        "validation_rows": n_val,
        "validation_rows_total": data.n_val,
        "streamed": data.streaming,
        "batch_size": batch_size,
        "n_features": len(feature_keys),
        "layer_sizes": layer_sizes(len(feature_keys), final_cfg),
        "model": {k: v for k, v in dataclasses.asdict(final_cfg).items() if k != "candidates"},
        "output_activation": final_cfg.output_activation,
        "selection": selection,
        "ensemble_size": len(models),
        "epochs_run": len(hist.get("loss", [])),
        "best_epoch": best_epoch(hist),
        "history": hist,
        "members": [{"seed": final_cfg.seed + i, "epochs_run": len(h.get("loss", [])),
                     "best_epoch": best_epoch(h),
                     "best_" + monitor: min(h[monitor]) if h.get(monitor) else None}
                    for i, h in enumerate(members)],
        "feature_error_scale": None if scale is None else [float(v) for v in scale],
        "seconds": {"read_and_transform": round(read_seconds, 2), "fit": round(fit_seconds, 2)},
    }
    return models, feature_keys, summary


SELECTION_MAX_ROWS = 200_000  # labelled eval rows model selection scores, at most


def selected_config(mcfg, summary: Dict):
    """The candidate the Trainer kept (what the export rebuilds)."""
    return candidate_configs(mcfg)[summary["selection"]["chosen"]]


def _fit_members(mcfg, data: "TrainingData", validation, batch_size: int, n_features: int,
                 log_dir: Optional[str]):
    """The ensemble's members (seeds seed, seed+1, ...) and their loss histories."""
    models, histories = [], []
    for i in range(mcfg.ensemble_size):
        member_cfg = dataclasses.replace(mcfg, seed=mcfg.seed + i)
        keras.utils.set_random_seed(member_cfg.seed)
        model = build_autoencoder(n_features, member_cfg)
        history = _fit(model, data, validation, batch_size, member_cfg,
                       log_dir if i == 0 else None)
        models.append(model)
        histories.append({k: [float(v) for v in vals] for k, vals in history.history.items()})
    return models, histories


def _squared_errors(models, x: np.ndarray) -> Iterator[Tuple[int, np.ndarray]]:
    """(start row, squared errors averaged over the members) per chunk of `x`."""
    step = EVAL_BATCH * 8
    for start in range(0, len(x), step):
        xb = x[start:start + step]
        yield start, sum((xb - np.asarray(m(xb, training=False))) ** 2
                         for m in models) / len(models)


def row_errors(models, x: np.ndarray, scale: Optional[np.ndarray] = None) -> np.ndarray:
    """Each row's error as the exported model computes it (components/signatures.py)."""
    out = np.empty(len(x), dtype=np.float64)
    for start, sq in _squared_errors(models, x):
        out[start:start + len(sq)] = (sq / (1.0 if scale is None else scale)).mean(axis=1)
    return out


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


def _error_scale(mcfg, models, data: "TrainingData") -> Optional[np.ndarray]:
    """The per-feature error scale a candidate exports (None unless it normalises),
    measured on the validation rows (the first training rows without any)."""
    if not mcfg.normalize_feature_errors:
        return None
    return feature_error_scale(models, data.x_val if len(data.x_val) else data.sample_train())


def feature_error_scale(models, x: np.ndarray) -> np.ndarray:
    """Per-feature mean squared error of the (ensemble's averaged) reconstruction on `x`."""
    if len(x) == 0:
        raise ValueError("no rows to normalise the feature errors on")
    sq = np.zeros(x.shape[1], dtype=np.float64)
    for _, chunk in _squared_errors(models, x):
        sq += chunk.sum(axis=0)
    scale = sq / len(x)
    floor = max(float(scale.mean()) * FEATURE_SCALE_FLOOR, 1e-12)
    return np.maximum(scale, floor)


def run_fn(fn_args) -> None:
    """TFX Trainer entry point (GenericExecutor)."""
    cfg: PipelineConfig = from_json(fn_args.custom_config["pipeline_config"])
    tft_output = tft.TFTransformOutput(fn_args.transform_output)
    models, feature_keys, summary = train(cfg, fn_args.train_files, tft_output,
                                          log_dir=fn_args.model_run_dir,
                                          eval_files=fn_args.eval_files)
    t0 = time.time()
    signatures.export_serving_model(
        models, tft_output, feature_keys, fn_args.serving_model_dir,
        # "model": the settings of the model exported (the selected candidate).
        metadata={"label_column": cfg.data.label_column, "model": summary["model"],
                  "model_selection": summary["selection"],
                  "train_rows": summary["train_rows"],
                  "feature_error_scale": summary["feature_error_scale"]},
        model_config=selected_config(cfg.model, summary),
        feature_error_scale=summary["feature_error_scale"])
    summary["seconds"]["export"] = round(time.time() - t0, 2)
    signatures.write_json(os.path.join(fn_args.model_run_dir, TRAINING_SUMMARY), summary)
    signatures.write_json(os.path.join(fn_args.serving_model_dir, "assets", TRAINING_SUMMARY),
                          summary)
    logging.info("Trained on %d rows: %s", summary["train_rows"], json.dumps(
        {k: v for k, v in summary.items() if k != "history"}))
