import numpy as np

from components.model.autoencoder import build_autoencoder, layer_sizes
from components.model.settings import ModelSettings
from pipeline.config import build_config


def _dense_layers(model):
    return [l for l in model.layers if l.__class__.__name__ == "Dense"]


def test_seed_shape_d_to_07d_to_d():
    model = build_autoencoder(20, ModelSettings())
    dense = _dense_layers(model)
    assert [l.units for l in dense] == [14, 20]
    assert dense[0].activation.__name__ == "relu"
    assert dense[1].activation.__name__ == "linear"
    assert model.input_shape == (None, 20) and model.output_shape == (None, 20)
    assert model.loss == "mse"


def test_seed_preset_has_sigmoid_output():
    model = build_autoencoder(6, build_config(overrides={"preset": "seed"}).model)
    assert _dense_layers(model)[-1].activation.__name__ == "sigmoid"


def test_hidden_layers_are_mirrored():
    cfg = ModelSettings(hidden_units=(16, 8), encoding_dim=3)
    assert layer_sizes(10, cfg) == [16, 8, 3, 8, 16, 10]
    model = build_autoencoder(10, cfg)
    assert [l.units for l in _dense_layers(model)] == [16, 8, 3, 8, 16, 10]
    assert model.get_layer("encoding").units == 3


def test_learning_rate_is_applied_and_model_learns_identity_on_low_rank_data():
    rng = np.random.default_rng(0)
    x = (rng.normal(size=(512, 2)) @ rng.normal(size=(2, 6))).astype("float32")
    x = (x - x.mean(0)) / x.std(0)
    model = build_autoencoder(6, ModelSettings(encoding_dim=2, learning_rate=0.01))
    assert abs(float(model.optimizer.learning_rate.numpy()) - 0.01) < 1e-9
    before = model.evaluate(x, x, verbose=0)
    model.fit(x, x, epochs=30, batch_size=32, verbose=0)
    after = model.evaluate(x, x, verbose=0)
    assert after < 0.25 * before
