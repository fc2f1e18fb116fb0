import json

import pytest

from pipeline import config as config_lib
from components.model.settings import ModelSettings
from pipeline.config import ConfigError, build_config


def test_defaults_follow_the_reference_recipe_except_output_and_early_stopping():
    cfg = build_config()
    m = cfg.model
    assert (m.epochs, m.validation_split, m.activation) == (50, 0.2, "relu")
    assert m.batch_size is None and m.effective_batch_size(1_000) == 32  # the recipe's 32
    assert m.encoding_size(20) == 14  # round(0.7 d), the seed's 20 -> 14
    assert m.output_activation == "linear" and m.early_stopping_patience == 5
    assert cfg.threshold.method == "auto"  # best_f1 with labels, else mean + 3 std
    assert cfg.model_name == "anomaly_detector" and cfg.output == "runs"


def test_seed_preset_reproduces_the_notebook_recipe():
    m = build_config(overrides={"preset": "seed"}).model
    assert m.output_activation == "sigmoid" and m.early_stopping_patience == 0
    assert (m.epochs, m.batch_size, m.learning_rate) == (50, 32, 1e-3)


def test_file_then_flags_override_in_order(tmp_path):
    f = tmp_path / "c.json"
    f.write_text(json.dumps({"model": {"epochs": 7, "batch_size": 64},
                             "threshold": {"method": "quantile", "params": {"q": 0.95}}}))
    cfg = build_config(config_lib.load_config_file(str(f)), {"model": {"epochs": 3}})
    assert cfg.model.epochs == 3 and cfg.model.batch_size == 64
    assert cfg.threshold.method == "quantile" and cfg.threshold.params == {"q": 0.95}


@pytest.mark.parametrize("overrides, message", [
    ({"model": {"epochs": 0}}, "epochs"),
    ({"model": {"validation_split": 1.0}}, "validation_split"),
    ({"data": {"eval_ratio": 0}}, "eval_ratio"),
    ({"threshold": {"method": "nope"}}, "unknown threshold method"),
    ({"threshold": {"method": "quantile", "params": {"q": 2}}}, "q"),
    ({"model": {"epoch": 3}}, "unknown setting 'model.epoch'"),
    ({"model_name": "a/b"}, "model_name"),
])
def test_invalid_settings_are_named(overrides, message):
    with pytest.raises(ConfigError, match=message):
        build_config(overrides=overrides)


def test_bad_config_file_is_a_config_error(tmp_path):
    f = tmp_path / "bad.json"
    f.write_text("{not json")
    with pytest.raises(ConfigError, match="bad.json:1: invalid JSON"):
        config_lib.load_config_file(str(f))
    with pytest.raises(ConfigError, match="not found"):
        config_lib.load_config_file(str(tmp_path / "missing.json"))


def test_json_round_trip_is_lossless():
    cfg = build_config(overrides={"model": {"hidden_units": [8, 4]}, "data": {"label_column": "y"}})
    again = config_lib.from_json(cfg.to_json())
    assert again == cfg
    assert again.model.hidden_units == (8, 4)


def test_encoding_dim_overrides_ratio():
    assert ModelSettings(encoding_dim=3).encoding_size(20) == 3
    assert ModelSettings(encoding_ratio=0.5).encoding_size(9) == 4  # round(4.5) -> 4 (banker's)
    assert ModelSettings().encoding_size(1) == 1


def test_batch_size_by_data_size_keeps_about_a_thousand_steps_per_epoch():
    m = ModelSettings()
    assert [m.effective_batch_size(n) for n in (500, 32_000, 64_001, 100_000, 800_000)] == \
        [32, 32, 64, 128, 1024]
    assert m.effective_batch_size(50_000_000) == 4096  # max_auto_batch_size
    assert ModelSettings(max_auto_batch_size=256).effective_batch_size(10_000_000) == 256
    assert ModelSettings(batch_size=7).effective_batch_size(10_000_000) == 7  # explicit wins
    with pytest.raises(ConfigError, match="batch_size"):
        build_config(overrides={"model": {"batch_size": 0}})


@pytest.mark.parametrize("model, message", [
    ({"ensemble_size": 0}, "ensemble_size"),
    ({"ensemble_size": 21}, "ensemble_size"),
    ({"normalize_feature_errors": "yes"}, "normalize_feature_errors"),
])
def test_ensemble_and_normalisation_settings_are_checked(model, message):
    with pytest.raises(ConfigError, match=message):
        build_config(overrides={"model": model})


def test_seed_preset_is_a_single_unnormalised_model_whatever_the_defaults():
    m = build_config(overrides={"preset": "seed"}).model
    assert m.ensemble_size == 1 and m.normalize_feature_errors is False


def test_model_selection_candidates_are_overrides_of_the_config():
    m = build_config(overrides={"model": {"epochs": 7}}).model
    configs = m.candidate_settings()
    assert [c.input_noise for c in configs] == [0.0, 0.3, 0.0]
    assert [c.hidden_units for c in configs] == [(), (), (64,)]
    assert [c.encoding_size(16) for c in configs] == [11, 11, 4]
    assert all(c.epochs == 7 and c.candidates == () for c in configs)
    one = build_config(overrides={"model": {"candidates": []}}).model
    assert one.candidate_settings() == [one]
    cfg = build_config(overrides={"model": {"candidates": [{}, {"hidden_units": [8]}]}})
    assert cfg.model.candidate_settings()[1].hidden_units == (8,)
    # Round trip through the JSON the components receive.
    assert config_lib.from_json(cfg.to_json()).model.candidates == ({}, {"hidden_units": [8]})


@pytest.mark.parametrize("candidates, message", [
    ([{"batch_size": 64}], "batch_size cannot be set per candidate"),
    (["sigmoid"], "candidate 0 must be an object"),
])
def test_bad_candidates_are_named(candidates, message):
    with pytest.raises(ConfigError, match=message):
        build_config(overrides={"model": {"candidates": candidates}})
