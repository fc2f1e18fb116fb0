"""The Trainer's epochs as progress records (components/progress.py).

`model.fit(verbose=0)` prints nothing; this callback reports
`candidate 2/3 epoch 14/50 loss 0.3100 val 0.3500` per epoch and one line when
the fit ends (epochs run, best epoch, early stop or the epoch cap). Keras 3
calls `on_epoch_end(epoch, logs)` after validation, so `logs` holds `loss`
and, with validation data, `val_loss`.
"""
import math
import time
from typing import Optional

import keras

from components import progress


def fit_label(candidate: int, candidates: int, member: int = 0, members: int = 1) -> str:
    """`candidate 2/3`, `candidate 2/3 member 1/5`; `training` for a single model."""
    label = f"candidate {candidate + 1}/{candidates}" if candidates > 1 else "training"
    if members > 1:
        label += f" member {member + 1}/{members}"
    return label


class EpochProgress(keras.callbacks.Callback):
    def __init__(self, label: str, epochs: int):
        super().__init__()
        self.label, self.epochs = label, int(epochs)
        self._started = 0.0
        self._best: Optional[float] = None
        self._best_epoch = 0
        self._epochs_run = 0

    def on_train_begin(self, logs=None):
        self._started = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        loss = float(logs.get("loss", math.nan))
        val = logs.get("val_loss")
        monitored = loss if val is None else float(val)
        if self._best is None or monitored < self._best:
            self._best, self._best_epoch = monitored, epoch + 1
        self._epochs_run = epoch + 1
        losses = f"loss {loss:.4f}" + ("" if val is None else f" val {float(val):.4f}")
        progress.step("  %s epoch %d/%d %s", self.label, epoch + 1, self.epochs, losses,
                      task=self.label, done=epoch + 1, total=self.epochs,
                      status=f"epoch {epoch + 1}/{self.epochs} {losses}",
                      label=f"  {self.label}", sample=True)

    def on_train_end(self, logs=None):
        if getattr(self.model, "stop_training", False) and self._epochs_run < self.epochs:
            how = "stopped early"
        elif self._best_epoch == self.epochs:
            how = "best at the epoch cap: the loss was still falling"
        else:
            how = "ran every epoch"
        best = "" if self._best is None else f", best epoch {self._best_epoch} ({self._best:.4f})"
        progress.step("  %s: %d/%d epochs%s, %s (%.1f s)", self.label, self._epochs_run,
                      self.epochs, best, how, time.monotonic() - self._started,
                      task=self.label, keep=True, end=True)
