"""The `threshold` and `evaluation` settings sections of the AnomalyEvaluator."""
from dataclasses import dataclass, field
from typing import List, Mapping, Optional, Tuple


@dataclass(frozen=True)
class ThresholdSettings:
    """How the anomaly threshold is fitted on reconstruction errors.

    Fitted on the eval split's normal rows (label 0) when labels exist, else on
    all eval rows; `contamination` always uses all eval rows. The default,
    `auto`, is `best_f1` (the labels pick the F1-maximising threshold) when
    the eval split holds at least `min_anomalies` (5) labelled anomalies, and
    the recipe's mean + k*std (k=3) of the normal rows' errors otherwise
    (bench/results/quality.md: F1 on held-out rows, the two rules compared).
    Methods and their parameters: `thresholds.METHODS`, `thresholds.DEFAULT_PARAMS`.
    """

    method: str = "auto"
    params: Mapping[str, float] = field(default_factory=dict)

    def problems(self) -> List[str]:
        from components.evaluator import thresholds  # pure numpy, cheap

        try:
            thresholds.validate_params(self.method, dict(self.params))
        except ValueError as e:
            return [f"threshold: {e}"]
        return []


@dataclass(frozen=True)
class EvaluationSettings:
    """When the Evaluator blesses a model, and how its error pass runs."""

    min_roc_auc: Optional[float] = None
    # A candidate may be at most this much worse than the baseline (ROC-AUC with
    # labels; false-alarm rate without) and still be blessed.
    baseline_tolerance: float = 0.01
    ignore_baseline: bool = False
    # Errors kept per class for exact quantiles/metrics; beyond this a uniform
    # reservoir sample is used.
    max_error_samples: int = 1_000_000
    # Rows per Beam element (one record batch, one model call) in the error pass.
    batch_size: int = 16384

    def problems(self) -> List[str]:
        checks = [
            (self.min_roc_auc is None or 0 <= self.min_roc_auc <= 1,
             "evaluation.min_roc_auc must be in [0, 1]"),
            (self.baseline_tolerance >= 0, "evaluation.baseline_tolerance must be >= 0"),
            (self.max_error_samples >= 1, "evaluation.max_error_samples must be >= 1"),
            (self.batch_size >= 1, "evaluation.batch_size must be >= 1"),
        ]
        return [message for ok, message in checks if not ok]


CHALLENGER_NAMES = ("max_abs_z", "mahalanobis", "knn", "iforest")


@dataclass(frozen=True)
class ChallengerSettings:
    """Simple challengers the evaluator scores beside the autoencoder (challengers.py)."""

    enabled: bool = True
    names: Tuple[str, ...] = CHALLENGER_NAMES
    # Neighbours averaged by the `knn` challenger.
    knn_k: int = 5
    # Train rows the challengers are fitted on at most (a seeded sample beyond).
    max_fit_rows: int = 20000
    # Eval rows scored at most (a seeded sample beyond).
    max_eval_rows: int = 200000
    # Added to the covariance's diagonal so `mahalanobis` can invert it.
    mahalanobis_ridge: float = 1e-6
    # Seed of the row samples and of IsolationForest.
    seed: int = 0
    # When set (and labels exist): bless only if the candidate's ROC-AUC is at
    # least the best challenger's + this margin. None: off.
    bless_margin: Optional[float] = None

    def problems(self) -> List[str]:
        checks = [
            (all(n in CHALLENGER_NAMES for n in self.names),
             f"challengers.names must be among {', '.join(CHALLENGER_NAMES)}"),
            (self.knn_k >= 1, "challengers.knn_k must be >= 1"),
            (self.max_fit_rows > self.knn_k, "challengers.max_fit_rows must be > knn_k"),
            (self.max_eval_rows >= 1, "challengers.max_eval_rows must be >= 1"),
            (self.mahalanobis_ridge >= 0, "challengers.mahalanobis_ridge must be >= 0"),
            (self.bless_margin is None or -1 <= self.bless_margin <= 1,
             "challengers.bless_margin must be in [-1, 1]"),
        ]
        return [message for ok, message in checks if not ok]
