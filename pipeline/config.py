"""The one source of truth for every setting of the pipeline.

A `PipelineConfig` is a frozen, typed tree of dataclasses. It is built from
defaults, then a JSON config file (`--config FILE`), then command-line flags,
in that order; every component receives the part it needs from here, as JSON
in its `custom_config`/exec properties, so no setting lives anywhere else.

Nothing here does I/O at import time.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

DEFAULT_MODEL_NAME = "anomaly_detector"
DEFAULT_OUTPUT = "runs"
PRESETS = ("default", "seed")
# ModelConfig.effective_batch_size: at least this batch, ~this many steps per epoch.
AUTO_BATCH_MIN, AUTO_BATCH_STEPS = 32, 1000
EXAMPLE_FORMATS = ("parquet", "tfrecord")


class ConfigError(ValueError):
    """A setting is invalid; the message names the setting and the problem."""


@dataclass(frozen=True)
class ModelConfig:
    """Shape and training of the dense autoencoder.

    Layers: d -> hidden_units... -> encoding -> reversed(hidden_units)... -> d.
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
    # Model selection with labels: when the eval split holds at least
    # `select_min_anomalies` labelled anomalies (and normal rows), the Trainer
    # fits one model per candidate (each a set of overrides of this config)
    # and keeps the one whose errors rank those anomalies best (ROC-AUC);
    # otherwise, and with no candidates, only the first candidate / this
    # config. Default (bench/results/ideas.md has what each brought): as
    # configured (wins where an anomaly is an unusual combination of a few
    # features: annthyroid, satellite, thyroid); a denoising variant (kept on
    # cardio, breastw, shuttle seeds); a deeper, narrower one,
    # d -> 64 -> round(0.25 d) -> 64 -> d (it learns curved, clustered
    # manifolds a one-layer autoencoder reconstructs everything on:
    # pendigits 0.64 -> 0.99, shuttle).
    candidates: Tuple[Mapping[str, Any], ...] = (
        {}, {"input_noise": 0.3}, {"hidden_units": [64], "encoding_ratio": 0.25})
    select_min_anomalies: int = 5
    epochs: int = 50
    # None = by data size (`effective_batch_size`): the recipe's 32 up to
    # 32k training rows, then the power of two that keeps ~1,000 steps per
    # epoch, at most `max_auto_batch_size`.
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


@dataclass(frozen=True)
class ThresholdConfig:
    """How the anomaly threshold is fitted on reconstruction errors.

    Fitted on the eval split's normal rows (label 0) when labels exist, else on
    all eval rows; `contamination` always uses all eval rows. The default,
    `auto`, is `best_f1` (the labels pick the F1-maximising threshold) when
    the eval split holds at least `min_anomalies` (5) labelled anomalies, and
    the recipe's mean + k*std (k=3) of the normal rows' errors otherwise
    (bench/results/quality.md: F1 on held-out rows, the two rules compared).
    """

    method: str = "auto"
    params: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class EvalConfig:
    """When the Evaluator blesses a model."""

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


@dataclass(frozen=True)
class DriftConfig:
    """The data gate before training and `anomaly-pipeline drift`
    (components/validation).

    A span is compared with the training statistics of the last run whose data
    was accepted: Jensen-Shannon divergence (bits, 0..1) per numeric feature
    on the reference's deciles, L-infinity distance between the label's class
    shares. Above a threshold the run stops before Transform/Trainer (exit 2)
    and `drift` exits 3. Defaults measured on data/cardio.csv: random
    resamples of 250-900 rows stay below 0.075 / 0.045, a one-standard-
    deviation shift of one feature gives 0.19-0.30. `enabled=False` skips the
    drift comparison (schema anomalies still stop the run).
    """

    enabled: bool = True
    js_threshold: float = 0.1
    linf_threshold: float = 0.1


@dataclass(frozen=True)
class DataConfig:
    path: str = "data/cardio.csv"
    label_column: Optional[str] = None
    eval_ratio: float = 0.2
    # Span inputs (pipeline/spans.py): `path` is a directory of span folders.
    # `span_pattern` is CsvExampleGen's pattern relative to `path`, e.g.
    # 'span-{SPAN}/*.csv' or '{YYYY}-{MM}-{DD}/*.csv'; None = detected from the
    # folder names (set it for paths that cannot be listed here, e.g. gs://).
    span_pattern: Optional[str] = None
    # Transform and the Trainer read the newest `window` spans ingested so far.
    window: int = 1
    # How ExampleGen stores the examples: "parquet" (default; StatisticsGen,
    # Transform, Trainer and Evaluator read it ~4x faster) or "tfrecord"
    # (GZIP TFRecords of tf.Examples, the stock layout, for stock components
    # such as BulkInferrer or TFMA's Evaluator added downstream).
    example_format: str = "parquet"


@dataclass(frozen=True)
class PipelineConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    threshold: ThresholdConfig = field(default_factory=ThresholdConfig)
    evaluation: EvalConfig = field(default_factory=EvalConfig)
    drift: DriftConfig = field(default_factory=DriftConfig)
    output: str = DEFAULT_OUTPUT
    model_name: str = DEFAULT_MODEL_NAME
    pipeline_name: str = "anomaly-pipeline"
    runner: str = "local"
    beam_args: Tuple[str, ...] = ()
    enable_cache: bool = True
    preset: str = "default"
    # MLflow tracking/registry URI for the handoff after each push; None means
    # sqlite:///<output>/mlflow.db (see `registry_tracking_uri`).
    registry_uri: Optional[str] = None
    # ML Metadata in MySQL, "HOST[:PORT]/DATABASE" (account from the
    # ANOMALY_PIPELINE_MYSQL_USER/_PASSWORD environment variables, never stored
    # here); None = SQLite at <output>/metadata.sqlite. See pipeline/metadata.py.
    metadata_mysql: Optional[str] = None

    # Derived paths: everything a run writes lives under `output`.
    @property
    def output_dir(self) -> str:
        if "://" in self.output:  # a remote root (gs://, s3://) for compiled pipelines
            return self.output.rstrip("/")
        return os.path.abspath(self.output)

    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.output_dir, "pipeline_root")

    @property
    def metadata_path(self) -> str:
        return os.path.join(self.output_dir, "metadata.sqlite")

    @property
    def serving_dir(self) -> str:
        return os.path.join(self.output_dir, "serving_model", self.model_name)

    @property
    def registry_tracking_uri(self) -> str:
        return self.registry_uri or "sqlite:///" + os.path.join(self.output_dir, "mlflow.db")

    def validate(self) -> "PipelineConfig":
        m, d = self.model, self.data
        checks = [
            (m.epochs >= 1, "model.epochs must be >= 1"),
            (m.batch_size is None or m.batch_size >= 1, "model.batch_size must be >= 1"),
            (m.max_auto_batch_size >= 1, "model.max_auto_batch_size must be >= 1"),
            (m.learning_rate > 0, "model.learning_rate must be > 0"),
            (0 <= m.validation_split < 1, "model.validation_split must be in [0, 1)"),
            (m.early_stopping_patience >= 0, "model.early_stopping_patience must be >= 0"),
            (m.input_noise >= 0, "model.input_noise must be >= 0"),
            (m.memory_budget_mb >= 1, "model.memory_budget_mb must be >= 1"),
            (m.select_min_anomalies >= 1, "model.select_min_anomalies must be >= 1"),
            (_candidates_problem(m) is None, f"model.candidates: {_candidates_problem(m)}"),
            (isinstance(m.ensemble_size, int) and 1 <= m.ensemble_size <= 20,
             "model.ensemble_size must be an integer in [1, 20]"),
            (isinstance(m.normalize_feature_errors, bool),
             "model.normalize_feature_errors must be true or false"),
            (m.encoding_dim is None or m.encoding_dim >= 1, "model.encoding_dim must be >= 1"),
            (0 < m.encoding_ratio <= 4, "model.encoding_ratio must be in (0, 4]"),
            (all(u >= 1 for u in m.hidden_units), "model.hidden_units must be positive"),
            (0 < d.eval_ratio < 1, "data.eval_ratio must be in (0, 1)"),
            (self.runner in ("local", "beam"), "runner must be 'local' or 'beam'"),
            (self.preset in PRESETS, f"preset must be one of {', '.join(PRESETS)}"),
            (bool(self.model_name) and "/" not in self.model_name,
             "model_name must be a non-empty name without '/'"),
            (self.evaluation.min_roc_auc is None or 0 <= self.evaluation.min_roc_auc <= 1,
             "evaluation.min_roc_auc must be in [0, 1]"),
            (self.evaluation.baseline_tolerance >= 0, "evaluation.baseline_tolerance must be >= 0"),
            (0 < self.drift.js_threshold <= 1, "drift.js_threshold must be in (0, 1]"),
            (0 < self.drift.linf_threshold <= 1, "drift.linf_threshold must be in (0, 1]"),
            (isinstance(self.drift.enabled, bool), "drift.enabled must be true or false"),
            (isinstance(d.window, int) and d.window >= 1, "data.window must be an integer >= 1"),
            (d.example_format in EXAMPLE_FORMATS,
             f"data.example_format must be one of {', '.join(EXAMPLE_FORMATS)}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
        from pipeline import metadata, spans  # pure Python, cheap

        if d.span_pattern is not None and spans.pattern_problem(d.span_pattern):
            raise ConfigError(f"data.span_pattern: {spans.pattern_problem(d.span_pattern)}")
        if self.metadata_mysql is not None and metadata.mysql_problem(self.metadata_mysql):
            raise ConfigError(metadata.mysql_problem(self.metadata_mysql))
        from components.evaluator import thresholds  # pure numpy, cheap

        try:
            thresholds.validate_params(self.threshold.method, dict(self.threshold.params))
        except ValueError as e:
            raise ConfigError(f"threshold: {e}") from None
        return self

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


# Settings a model-selection candidate may override (not the selection itself,
# nor how the data is held).
CANDIDATE_KEYS = ("hidden_units", "encoding_dim", "encoding_ratio", "activation",
                  "output_activation", "epochs", "learning_rate", "early_stopping_patience",
                  "input_noise", "ensemble_size", "normalize_feature_errors", "seed")


def _candidates_problem(m: "ModelConfig") -> Optional[str]:
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


def candidate_configs(m: "ModelConfig") -> List["ModelConfig"]:
    """The configurations model selection compares (one, without candidates)."""
    if not m.candidates:
        return [m]
    out = []
    for cand in m.candidates:
        values = dict(cand)
        if "hidden_units" in values:
            values["hidden_units"] = tuple(values["hidden_units"])
        out.append(dataclasses.replace(m, candidates=(), **values))
    return out


def describe_candidate(overrides: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(overrides.items())) or "as configured"


# The reference notebook recipe, reproduced exactly.
SEED_PRESET: Dict[str, Any] = {
    "model": {
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
    },
    "threshold": {"method": "mean_std", "params": {"k": 3.0}},
}


def _merge(base: Dict[str, Any], override: Mapping[str, Any], where: str) -> Dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if key not in base:
            valid = ", ".join(sorted(base))
            raise ConfigError(f"unknown setting '{where}{key}' (valid: {valid})")
        if isinstance(base[key], dict) and key != "params" and isinstance(value, Mapping):
            out[key] = _merge(base[key], value, f"{where}{key}.")
        else:
            out[key] = value
    return out


def _build(cls, values: Mapping[str, Any]):
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in values:
            continue
        v = values[f.name]
        if dataclasses.is_dataclass(f.default_factory if f.default_factory is not dataclasses.MISSING else None):
            v = _build(f.default_factory, v)
        elif f.name in ("hidden_units", "beam_args") and v is not None:
            v = tuple(v)
        elif f.name == "candidates" and isinstance(v, (list, tuple)):
            v = tuple(dict(c) if isinstance(c, Mapping) else c for c in v)
        elif f.name == "params":
            v = dict(v or {})
        kwargs[f.name] = v
    return cls(**kwargs)


def build_config(file_values: Optional[Mapping[str, Any]] = None,
                 overrides: Optional[Mapping[str, Any]] = None) -> PipelineConfig:
    """Defaults <- preset <- config file <- overrides (nested dicts), validated."""
    values = PipelineConfig().to_dict()
    layers = [file_values or {}, overrides or {}]
    preset = "default"
    for layer in layers:
        preset = layer.get("preset", preset)
    if preset == "seed":
        values = _merge(values, SEED_PRESET, "")
    for layer in layers:
        values = _merge(values, layer, "")
    return _build(PipelineConfig, values).validate()


def load_config_file(path: str) -> Dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: config file must hold a JSON object")
    return data


def from_json(text: str) -> PipelineConfig:
    """Rebuilds a config inside a component from `PipelineConfig.to_json()`."""
    return _build(PipelineConfig, json.loads(text))
