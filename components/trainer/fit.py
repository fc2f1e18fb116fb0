"""Fitting: the autoencoder(s) on the normal training rows, model selection, row errors.

With `model.candidates` and labelled eval rows (at least
`model.select_min_anomalies` anomalies), one model per candidate is fitted and
the one whose errors rank the eval split's anomalies best (ROC-AUC) is kept.
"""
import dataclasses
import logging
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Optional, Tuple

import keras
import numpy as np
import tensorflow_transform as tft

from components import progress
from components.columns import ColumnRoles
from components.evaluator import metrics
from components.model import trimmed
from components.model.autoencoder import build_autoencoder, layer_sizes
from components.model.settings import ModelSettings, describe_candidate
from components.trainer.data import ModelInputs, TrainingData, labelled_rows, transformed_blocks
from components.trainer.progress import EpochProgress, fit_label

EVAL_BATCH = 8192
SELECTION_MAX_ROWS = 200_000  # labelled eval rows model selection scores, at most


@dataclass
class TrainResult:
    models: List[keras.Model]   # the kept candidate's ensemble members
    inputs: ModelInputs         # the raw columns read and the input layout
    summary: Dict[str, Any]     # training_summary.json
    settings: ModelSettings     # the kept candidate's settings (what the export rebuilds)


def train(mcfg: ModelSettings, roles: ColumnRoles, train_files,
          tft_output: tft.TFTransformOutput, log_dir: Optional[str] = None,
          eval_files=None) -> TrainResult:
    """Fits the autoencoder(s) on the normal training rows.

    With `model.candidates` and labelled eval rows (at least
    `model.select_min_anomalies` anomalies in `eval_files`), one model per
    candidate is fitted and the one whose errors rank the eval split's
    anomalies best (ROC-AUC) is kept; otherwise only the first is fitted.
    """
    label = roles.label
    keras.utils.set_random_seed(mcfg.seed)
    inputs = ModelInputs(tft_output, roles)
    grouping = None if inputs.layout.is_identity() else inputs.layout.grouping()

    t0 = time.time()
    data = TrainingData(
        lambda: transformed_blocks(train_files, inputs, label,
                                   normal_only=bool(label),
                                   validation_split=mcfg.validation_split),
        inputs.width, int(mcfg.memory_budget_mb) << 20)
    n_train, n_val = data.n_train, len(data.x_val)
    if n_train == 0:
        raise ValueError("no training rows" + (f" with {label} == 0" if label else ""))

    read_seconds = time.time() - t0
    progress.say("  %d training rows, %d validation rows, %d model inputs (read in %.1f s)",
                 n_train, n_val, inputs.width, read_seconds)
    t0 = time.time()
    batch_size = mcfg.effective_batch_size(n_train)
    validation = (data.x_val, data.x_val) if n_val else None
    if data.streaming:
        logging.info("training data (%d rows) exceeds model.memory_budget_mb=%d: streaming it "
                     "every epoch", n_train, mcfg.memory_budget_mb)
    configs = mcfg.candidate_settings()
    overrides = list(mcfg.candidates) or [{}]
    eval_rows, why_single = None, None
    if len(configs) > 1:
        if label and eval_files:
            eval_rows = labelled_rows(eval_files, inputs, label,
                                      SELECTION_MAX_ROWS)
            n_pos = int(eval_rows[1].sum())
            if n_pos < mcfg.select_min_anomalies or n_pos == len(eval_rows[1]):
                why_single = (f"{n_pos} labelled anomalies in the eval split (< "
                              f"select_min_anomalies={mcfg.select_min_anomalies}): first candidate")
        else:
            why_single = "no labels: first candidate"
        if why_single:
            configs, overrides, eval_rows = configs[:1], overrides[:1], None
    fitted, fit_times = [], []
    for i, cand_cfg in enumerate(configs):
        started = time.time()
        fitted.append(_fit_members(cand_cfg, data, validation, batch_size, inputs.width,
                                   log_dir if i == 0 else None, (i, len(configs)),
                                   trim=0.0 if label else cand_cfg.unlabelled_trim))
        fit_times.append(round(time.time() - started, 2))
    chosen = 0
    monitor = "val_loss" if n_val else "loss"
    selection = {"candidates": [{"overrides": dict(o), "roc_auc": None,
                                 **_fit_facts(members, monitor, cand.epochs), "seconds": s}
                                for o, (_, members), cand, s
                                in zip(overrides, fitted, configs, fit_times)],
                 "chosen": 0, "why": why_single or "one candidate"}
    if eval_rows is not None:
        x_eval, y_eval = eval_rows
        scales = [_error_scale(c, m, data, grouping) for c, (m, _) in zip(configs, fitted)]
        aucs = [metrics.roc_auc(row_errors(m, x_eval, sc, grouping), y_eval)
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
        progress.say("  kept candidate %d/%d (%s): ROC-AUC %.4f on %d labelled eval rows",
                     chosen + 1, len(configs), describe_candidate(overrides[chosen]),
                     aucs[chosen], len(y_eval))
    final_cfg = configs[chosen]
    models, members = fitted[chosen]
    fit_seconds = time.time() - t0
    hist = members[0]

    def best_epoch(h):
        return _best_epoch(h, monitor)

    # The chosen candidate's scale, computed once (during selection if it ran).
    scale = (scales[chosen] if eval_rows is not None
             else _error_scale(final_cfg, models, data, grouping))
    summary = {
        "train_rows": n_train,
        "validation_rows": n_val,
        "validation_rows_total": data.n_val,
        "streamed": data.streaming,
        "batch_size": batch_size,
        "n_features": inputs.width,
        "columns": inputs.layout.names,
        "layer_sizes": layer_sizes(inputs.width, final_cfg),
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
    return TrainResult(models, inputs, summary, final_cfg)


def _best_epoch(history: Dict[str, List[float]], monitor: str) -> Optional[int]:
    values = history.get(monitor)
    return int(min(range(len(values)), key=values.__getitem__)) + 1 if values else None


def _fit_facts(members: List[Dict[str, List[float]]], monitor: str, cap: int) -> Dict[str, Any]:
    """A candidate's first member: epochs run, best epoch, its loss; the epoch cap."""
    h = members[0] if members else {}
    return {"epochs_run": len(h.get("loss", [])), "best_epoch": _best_epoch(h, monitor),
            "best_" + monitor: min(h[monitor]) if h.get(monitor) else None, "epochs": cap}


def _fit_members(mcfg, data: "TrainingData", validation, batch_size: int, n_features: int,
                 log_dir: Optional[str], candidate: Tuple[int, int] = (0, 1),
                 trim: float = 0.0):
    """The ensemble's members (seeds seed, seed+1, ...) and their loss histories."""
    models, histories = [], []
    for i in range(mcfg.ensemble_size):
        member_cfg = dataclasses.replace(mcfg, seed=mcfg.seed + i)
        keras.utils.set_random_seed(member_cfg.seed)
        model = build_autoencoder(n_features, member_cfg)
        label = fit_label(candidate[0], candidate[1], i, mcfg.ensemble_size)
        history = _fit(model, data, validation, batch_size, member_cfg,
                       log_dir if i == 0 else None, label, trim=trim)
        models.append(model)
        histories.append({k: [float(v) for v in vals] for k, vals in history.history.items()})
    return models, histories


def _squared_errors(models, x: np.ndarray, grouping: Optional[np.ndarray] = None
                    ) -> Iterator[Tuple[int, np.ndarray]]:
    """(start row, per-column squared errors averaged over the members) per chunk of `x`;
    `grouping` ([width, columns], components/model/inputs.py) sums inputs per column."""
    step = EVAL_BATCH * 8
    for start in range(0, len(x), step):
        xb = x[start:start + step]
        sq = sum((xb - np.asarray(m(xb, training=False))) ** 2 for m in models) / len(models)
        yield start, sq if grouping is None else sq @ grouping


def row_errors(models, x: np.ndarray, scale: Optional[np.ndarray] = None,
               grouping: Optional[np.ndarray] = None) -> np.ndarray:
    """Each row's error as the exported model computes it (components/model/export.py)."""
    out = np.empty(len(x), dtype=np.float64)
    for start, sq in _squared_errors(models, x, grouping):
        out[start:start + len(sq)] = (sq / (1.0 if scale is None else scale)).mean(axis=1)
    return out


def _fit(model, data: "TrainingData", validation, batch_size: int, mcfg, log_dir,
         label: str = "training", trim: float = 0.0):
    # Keras prints nothing (verbose=0): EpochProgress reports each epoch.
    callbacks = [EpochProgress(label, mcfg.epochs)]
    monitor = "val_loss" if validation is not None else "loss"
    start = 0
    if trim > 0:
        callbacks.insert(0, trimmed.compile_trimmed(model, mcfg.learning_rate, trim,
                                                    mcfg.trim_warmup_epochs))
        start = min(mcfg.trim_warmup_epochs, mcfg.epochs - 1)  # the trimmed loss' scale
    if mcfg.early_stopping_patience > 0:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=monitor, patience=mcfg.early_stopping_patience, restore_best_weights=True,
            start_from_epoch=start))
    if log_dir:
        callbacks.append(keras.callbacks.TensorBoard(log_dir=log_dir, update_freq="epoch"))
    if data.streaming:
        return model.fit(data.train_dataset(batch_size, mcfg.seed),
                         validation_data=validation, validation_batch_size=EVAL_BATCH,
                         epochs=mcfg.epochs, callbacks=callbacks, verbose=0)
    return model.fit(data.x_train, data.x_train, batch_size=batch_size, shuffle=True,
                     validation_data=validation,
                     validation_batch_size=max(batch_size, EVAL_BATCH),
                     epochs=mcfg.epochs, callbacks=callbacks, verbose=0)


FEATURE_SCALE_FLOOR = 1e-6  # relative to the mean scale: a perfectly reconstructed
                            # feature must not turn tiny errors into huge ones


def _error_scale(mcfg, models, data: "TrainingData", grouping=None) -> Optional[np.ndarray]:
    """The per-column error scale a candidate exports (None unless it normalises),
    measured on the validation rows (the first training rows without any)."""
    if not mcfg.normalize_feature_errors:
        return None
    return feature_error_scale(models, data.x_val if len(data.x_val) else data.sample_train(),
                               grouping)


def feature_error_scale(models, x: np.ndarray, grouping: Optional[np.ndarray] = None
                        ) -> np.ndarray:
    """Per-column mean squared error of the (ensemble's averaged) reconstruction on `x`."""
    if len(x) == 0:
        raise ValueError("no rows to normalise the feature errors on")
    sq = np.zeros(x.shape[1] if grouping is None else grouping.shape[1], dtype=np.float64)
    for _, chunk in _squared_errors(models, x, grouping):
        sq += chunk.sum(axis=0)
    scale = sq / len(x)
    floor = max(float(scale.mean()) * FEATURE_SCALE_FLOOR, 1e-12)
    return np.maximum(scale, floor)
