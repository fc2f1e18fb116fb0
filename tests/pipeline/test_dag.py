"""What the DAG hands each component: exactly its settings, rebuilt inside from one source.

The Trainer, the AnomalyEvaluator and the DataGate rebuild their sections from
the JSON pipeline/dag.py gives them; a section they are not given falls back to
the dataclass defaults, which are the pipeline's defaults (no second copy).
"""
import json

from components.columns import ColumnRoles
from components.data_gate.executor import parse_config as gate_config
from components.evaluator.executor import parse_config as evaluator_config
from components.trainer.run import parse_config as trainer_config
from pipeline import dag
from pipeline.config import PipelineConfig, build_config


def _sent(cfg):
    # As TFX passes them: custom_config as a dict, the others as JSON strings.
    configs = dag.component_configs(cfg)
    return (json.loads(json.dumps(configs["trainer"])), json.dumps(configs["evaluator"]),
            json.dumps(configs["gate"]))


def test_components_rebuild_the_settings_the_pipeline_sent():
    cfg = build_config(overrides={
        "data": {"label_column": "is_fraud"},
        "model": {"epochs": 7, "hidden_units": [32], "candidates": [{}, {"input_noise": 0.2}]},
        "threshold": {"method": "quantile", "params": {"q": 0.995}},
        "evaluation": {"batch_size": 512, "max_error_samples": 1000, "min_roc_auc": 0.8},
        "drift": {"js_threshold": 0.2, "enabled": False}})
    trainer, evaluator, gate = _sent(cfg)
    roles, model = trainer_config(trainer)
    assert roles == ColumnRoles(label="is_fraud") and model == cfg.model
    roles, threshold, evaluation = evaluator_config(evaluator)
    assert roles.label == "is_fraud"
    assert threshold == cfg.threshold and evaluation == cfg.evaluation
    roles, drift = gate_config(gate)
    assert roles.label == "is_fraud" and drift == cfg.drift


def test_a_section_not_sent_takes_the_pipeline_defaults():
    defaults = PipelineConfig()
    assert trainer_config({}) == (ColumnRoles(), defaults.model)
    assert evaluator_config("{}") == (ColumnRoles(), defaults.threshold, defaults.evaluation)
    assert gate_config(None) == (ColumnRoles(), defaults.drift)
    # The evaluator's error pass defaults are the config's (they once differed: 1024 vs 16384).
    assert evaluator_config("{}")[2].batch_size == defaults.evaluation.batch_size == 16384


def test_only_what_changes_a_result_reaches_the_components():
    a = dag.component_configs(build_config(overrides={"output": "/tmp/a", "model_name": "x"}))
    b = dag.component_configs(build_config(overrides={"output": "/tmp/b"}))
    assert a == b  # a new --output keeps the cache valid
