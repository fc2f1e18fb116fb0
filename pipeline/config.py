"""The one place settings are composed and merged.

Each component owns its settings section (a frozen dataclass beside it):
`columns` (components/columns.py: column roles and how they are inferred),
`model` (components/model/settings.py), `threshold`, `evaluation` and `challengers`
(components/evaluator/settings.py), `drift` (components/data_gate/settings.py).
This module adds the pipeline's own sections (`data`: what to read and how to
split it; `airflow`: the DAG's schedule) and the top-level fields, and builds
a `PipelineConfig` from, in this order:

    defaults  <-  --preset  <-  --config FILE (JSON, same nesting)  <-  flags / environment

`build_config` is the only merge; the CLI commands, the Airflow DAG and the
KFP compile all call it. Components receive their sections as JSON
(pipeline/dag.py) and rebuild them with `components.settings.from_dict`, so
no default is written twice. Nothing here does I/O at import time.
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Tuple

from components import settings
from components.columns import ColumnSettings
from components.data_gate.settings import DriftSettings
from components.evaluator.settings import (ChallengerSettings, EvaluationSettings,
                                           ThresholdSettings)
from components.example_gen.csv_to_examples import EXAMPLE_FORMATS
from components.model.settings import SEED_RECIPE, ModelSettings

DEFAULT_MODEL_NAME = "anomaly_detector"
DEFAULT_OUTPUT = "runs"
PRESETS = ("default", "seed")
RUNNERS = ("local", "beam")

ConfigError = settings.SettingsError


@dataclass(frozen=True)
class DataSettings:
    """What the pipeline reads and how ExampleGen splits and stores it."""

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
    # The CSV delimiter; None: detected from the header (',', ';', tab, '|').
    delimiter: Optional[str] = None
    # Fewer data rows than this (after quarantine) is refused before the DAG
    # runs: the split needs rows on both sides and the model enough to fit.
    min_rows: int = 30

    def problems(self) -> List[str]:
        from pipeline import spans  # pure Python, cheap

        checks = [
            (0 < self.eval_ratio < 1, "data.eval_ratio must be in (0, 1)"),
            (isinstance(self.window, int) and self.window >= 1,
             "data.window must be an integer >= 1"),
            (self.example_format in EXAMPLE_FORMATS,
             f"data.example_format must be one of {', '.join(EXAMPLE_FORMATS)}"),
            (self.delimiter is None or (len(self.delimiter) == 1 and self.delimiter not in
                                        "\"\r\n"),
             "data.delimiter must be one character (not a quote or a line break)"),
            (isinstance(self.min_rows, int) and self.min_rows >= 2,
             "data.min_rows must be an integer >= 2"),
        ]
        out = [message for ok, message in checks if not ok]
        if self.span_pattern is not None and spans.pattern_problem(self.span_pattern):
            out.append(f"data.span_pattern: {spans.pattern_problem(self.span_pattern)}")
        return out


@dataclass(frozen=True)
class AirflowSettings:
    """The Airflow DAG's schedule (pipeline/runners/airflow_dag.py)."""

    schedule: Optional[str] = "@daily"   # cron or preset; None: manual runs only
    start_date: str = "2024-01-01"       # YYYY-MM-DD
    catchup: bool = False
    retries: int = 0
    tags: Tuple[str, ...] = ("tfx", "anomaly-detection")

    def problems(self) -> List[str]:
        import datetime

        try:
            datetime.datetime.strptime(str(self.start_date), "%Y-%m-%d")
        except ValueError:
            return [f"airflow.start_date must be YYYY-MM-DD, got '{self.start_date}'"]
        return [] if self.retries >= 0 else ["airflow.retries must be >= 0"]


@dataclass(frozen=True)
class PipelineConfig:
    data: DataSettings = field(default_factory=DataSettings)
    columns: ColumnSettings = field(default_factory=ColumnSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    threshold: ThresholdSettings = field(default_factory=ThresholdSettings)
    evaluation: EvaluationSettings = field(default_factory=EvaluationSettings)
    challengers: ChallengerSettings = field(default_factory=ChallengerSettings)
    drift: DriftSettings = field(default_factory=DriftSettings)
    airflow: AirflowSettings = field(default_factory=AirflowSettings)
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
    # Seconds a run (and the Pusher of an Airflow task) waits for another run
    # holding the lock on `output` (components/output_lock.py); 0: stop at once.
    lock_wait: float = 0.0

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

    def problems(self) -> List[str]:
        from pipeline import metadata  # pure Python, cheap

        out: List[str] = []
        for section in (self.data, self.columns, self.model, self.threshold, self.evaluation,
                        self.challengers, self.drift, self.airflow):
            out += section.problems()
        checks = [
            (self.runner in RUNNERS, f"runner must be one of {', '.join(RUNNERS)}"),
            (self.preset in PRESETS, f"preset must be one of {', '.join(PRESETS)}"),
            (bool(self.model_name) and "/" not in self.model_name,
             "model_name must be a non-empty name without '/'"),
            (isinstance(self.lock_wait, (int, float)) and not isinstance(self.lock_wait, bool)
             and 0 <= self.lock_wait < float("inf"),
             "lock_wait must be a number of seconds >= 0"),
        ]
        out += [message for ok, message in checks if not ok]
        if self.metadata_mysql is not None and metadata.mysql_problem(self.metadata_mysql):
            out.append(metadata.mysql_problem(self.metadata_mysql))
        return out

    def validate(self) -> "PipelineConfig":
        settings.first_problem(self.problems())
        return self

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


# The reference notebook recipe (`--preset seed`), reproduced exactly.
SEED_PRESET: Dict[str, Any] = {
    "model": SEED_RECIPE,
    "threshold": {"method": "mean_std", "params": {"k": 3.0}},
}
PRESET_VALUES: Dict[str, Dict[str, Any]] = {"default": {}, "seed": SEED_PRESET}


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


def _new_method_resets_params(values: Dict[str, Any], layer: Mapping[str, Any]) -> Mapping:
    """A layer that names another threshold method without its params does not
    inherit the params of the method it replaces (they belong to that one)."""
    thr = layer.get("threshold")
    if (isinstance(thr, Mapping) and "method" in thr and "params" not in thr
            and thr["method"] != values["threshold"]["method"]):
        return {**layer, "threshold": {**thr, "params": {}}}
    return layer


def build_config(file_values: Optional[Mapping[str, Any]] = None,
                 overrides: Optional[Mapping[str, Any]] = None) -> PipelineConfig:
    """Defaults <- preset <- config file <- overrides (nested dicts), validated.

    The one merge of settings: `overrides` are the flags of a command, or the
    environment variables of the Airflow DAG, as nested dicts.
    """
    values = PipelineConfig().to_dict()
    layers = [dict(file_values or {}), dict(overrides or {})]
    preset = "default"
    for layer in layers:
        preset = layer.get("preset", preset)
    if preset not in PRESET_VALUES:
        raise ConfigError(f"preset must be one of {', '.join(PRESETS)}")
    values = _merge(values, PRESET_VALUES[preset], "")
    for layer in layers:
        values = _merge(values, _new_method_resets_params(values, layer), "")
    return settings.from_dict(PipelineConfig, values).validate()


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


def load(config_file: Optional[str] = None,
         overrides: Optional[Mapping[str, Any]] = None) -> PipelineConfig:
    """`build_config` on the JSON file `config_file` (if any) and `overrides`."""
    return build_config(load_config_file(config_file) if config_file else {}, overrides)


def from_json(text: str) -> PipelineConfig:
    """Rebuilds a config from `PipelineConfig.to_json()` (e.g. inside an Airflow task)."""
    return settings.from_dict(PipelineConfig, json.loads(text))


def default(dotted: str) -> Any:
    """The default of a setting, e.g. default("model.epochs") -> 50, for help texts."""
    value: Any = PipelineConfig()
    for part in dotted.split("."):
        value = getattr(value, part)
    return value
