"""The `model` settings section: shape and training of the dense autoencoder.

Used by the Trainer (components/trainer) and the export (components/model);
pipeline/config.py composes it. The comments say why a default is what it is;
bench/results/ideas.md has the measurements behind them.
"""
import dataclasses
from dataclasses import dataclass
from typing import Any, List, Mapping, Optional, Tuple

# effective_batch_size: at least this batch, ~this many steps per epoch.
AUTO_BATCH_MIN, AUTO_BATCH_STEPS = 32, 1000

# Settings a model-selection candidate may override (not the selection itself,
# nor how the data is held).
CANDIDATE_KEYS = ("hidden_units", "encoding_dim", "encoding_ratio", "activation",
                  "output_activation", "epochs", "learning_rate", "early_stopping_patience",
                  "input_noise", "ensemble_size", "normalize_feature_errors", "seed")


@dataclass(frozen=True)
class ModelSettings:
    """Layers: d -> hidden_units... -> encoding -> reversed(hidden_units)... -> d.

    `encoding_dim=None` means round(encoding_ratio * d), the reference recipe's
    round(0.7 d).
    """

    hidden_units: Tuple[int, ...] = ()
    encoding_dim: Optional[int] = None
    encoding_ratio: float = 0.7
    activation: str = "relu"
    # The reference recipe ends in a sigmoid, which cannot output the negative
    # z-scores it is asked to reconstruct; a linear output can.
    output_activation: str = "linear"
    # Model selection with labels: with at least `select_min_anomalies`
    # labelled anomalies in the eval split, one model per candidate (a set of
    # overrides of this section) is fitted and the highest eval ROC-AUC kept;
    # otherwise only the first. As configured (unusual combinations of a few
    # features: annthyroid, satellite, thyroid); denoising (cardio, breastw,
    # shuttle); deeper and narrower (clustered data: pendigits 0.64 -> 0.99).
    candidates: Tuple[Mapping[str, Any], ...] = (
        {}, {"input_noise": 0.3}, {"hidden_units": [64], "encoding_ratio": 0.25})
    select_min_anomalies: int = 5
    epochs: int = 50
    # None = by data size (`effective_batch_size`): the recipe's 32 up to 32k
    # training rows, then the power of two that keeps ~1,000 steps per epoch,
    # at most `max_auto_batch_size`.
    batch_size: Optional[int] = None
    max_auto_batch_size: int = 4096
    learning_rate: float = 1e-3
    validation_split: float = 0.2
    # Stop when validation loss has not improved for this many epochs and keep
    # the best weights; 0 disables early stopping (the reference recipe).
    early_stopping_patience: int = 5
    seed: int = 42
    # Denoising: Gaussian noise of this std (z-score units) is added to the
    # inputs during training only (the target stays clean); 0 disables.
    input_noise: float = 0.0
    # Members trained with seeds seed, seed+1, ...; the exported model averages
    # their squared errors (less variance from one unlucky initialisation).
    ensemble_size: int = 1
    # Divide each feature's squared error by its mean on the validation rows
    # (stored in the model), so a feature that is hard to reconstruct for
    # every row does not dominate the error and `top_features`.
    normalize_feature_errors: bool = False
    # The Trainer keeps the z-scored training rows in memory (4 bytes per
    # feature per row) up to this size, else streams them every epoch.
    memory_budget_mb: int = 2048
    # Without labels the training rows hold the anomalies too, and a plain MSE
    # learns to reconstruct them. After `trim_warmup_epochs` epochs of plain MSE,
    # each batch's loss leaves out this share of its highest-error rows (a
    # trimmed MSE; the validation loss is trimmed the same); 0 disables. Runs
    # with --label-column train on the normal rows only and never trim.
    unlabelled_trim: float = 0.25
    trim_warmup_epochs: int = 2

    def effective_batch_size(self, n_train_rows: int) -> int:
        if self.batch_size is not None:
            return int(self.batch_size)
        target = max(1, n_train_rows // AUTO_BATCH_STEPS)
        size = AUTO_BATCH_MIN
        while size < target and size < self.max_auto_batch_size:
            size *= 2
        return min(size, max(AUTO_BATCH_MIN, self.max_auto_batch_size))

    def encoding_size(self, n_features: int) -> int:
        if self.encoding_dim is not None:
            return int(self.encoding_dim)
        return max(1, int(round(self.encoding_ratio * n_features)))

    def problems(self) -> List[str]:
        checks = [
            (self.epochs >= 1, "model.epochs must be >= 1"),
            (self.batch_size is None or self.batch_size >= 1, "model.batch_size must be >= 1"),
            (self.max_auto_batch_size >= 1, "model.max_auto_batch_size must be >= 1"),
            (self.learning_rate > 0, "model.learning_rate must be > 0"),
            (0 <= self.validation_split < 1, "model.validation_split must be in [0, 1)"),
            (self.early_stopping_patience >= 0, "model.early_stopping_patience must be >= 0"),
            (self.input_noise >= 0, "model.input_noise must be >= 0"),
            (self.memory_budget_mb >= 1, "model.memory_budget_mb must be >= 1"),
            (0 <= self.unlabelled_trim < 1, "model.unlabelled_trim must be in [0, 1)"),
            (self.trim_warmup_epochs >= 0, "model.trim_warmup_epochs must be >= 0"),
            (self.select_min_anomalies >= 1, "model.select_min_anomalies must be >= 1"),
            (_candidates_problem(self) is None,
             f"model.candidates: {_candidates_problem(self)}"),
            (isinstance(self.ensemble_size, int) and 1 <= self.ensemble_size <= 20,
             "model.ensemble_size must be an integer in [1, 20]"),
            (isinstance(self.normalize_feature_errors, bool),
             "model.normalize_feature_errors must be true or false"),
            (self.encoding_dim is None or self.encoding_dim >= 1,
             "model.encoding_dim must be >= 1"),
            (0 < self.encoding_ratio <= 4, "model.encoding_ratio must be in (0, 4]"),
            (all(u >= 1 for u in self.hidden_units), "model.hidden_units must be positive"),
        ]
        return [message for ok, message in checks if not ok]

    def candidate_settings(self) -> List["ModelSettings"]:
        """The settings model selection compares (this one, without candidates)."""
        if not self.candidates:
            return [self]
        out = []
        for cand in self.candidates:
            values = dict(cand)
            if "hidden_units" in values:
                values["hidden_units"] = tuple(values["hidden_units"])
            out.append(dataclasses.replace(self, candidates=(), **values))
        return out


def _candidates_problem(m: ModelSettings) -> Optional[str]:
    if not isinstance(m.candidates, (list, tuple)):
        return "must be a list of objects of model settings"
    for i, cand in enumerate(m.candidates):
        if not isinstance(cand, Mapping):
            return f"candidate {i} must be an object of model settings"
        bad = sorted(set(cand) - set(CANDIDATE_KEYS))
        if bad:
            return (f"candidate {i}: {', '.join(bad)} cannot be set per candidate (valid: "
                    f"{', '.join(CANDIDATE_KEYS)})")
    return None


def describe_candidate(overrides: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(overrides.items())) or "as configured"


# The reference notebook recipe (`--preset seed`), reproduced exactly.
SEED_RECIPE = {
    "hidden_units": [],
    "encoding_dim": None,
    "encoding_ratio": 0.7,
    "activation": "relu",
    "output_activation": "sigmoid",
    "epochs": 50,
    "batch_size": 32,
    "learning_rate": 1e-3,
    "validation_split": 0.2,
    "early_stopping_patience": 0,
    "input_noise": 0.0,
    "ensemble_size": 1,
    "normalize_feature_errors": False,
    "candidates": [],
    "unlabelled_trim": 0.0,
}
