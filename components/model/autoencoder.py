"""The dense autoencoder, built from `ModelSettings` alone (no TFX imports)."""
from typing import List

import keras

from components.model.settings import ModelSettings


def layer_sizes(n_features: int, cfg: ModelSettings) -> List[int]:
    """Units of every Dense layer, input excluded: hidden..., encoding, hidden reversed..., d."""
    hidden = list(cfg.hidden_units)
    return hidden + [cfg.encoding_size(n_features)] + hidden[::-1] + [n_features]


def build_autoencoder(n_features: int, cfg: ModelSettings, compile: bool = True) -> keras.Model:
    """d -> hidden -> encoding -> hidden -> d, compiled with Adam + MSE (unless `compile`
    is False: the export's inference copy)."""
    if n_features < 1:
        raise ValueError("the autoencoder needs at least one feature")
    sizes = layer_sizes(n_features, cfg)
    inputs = keras.Input(shape=(n_features,), name="features")
    x = inputs
    if cfg.input_noise > 0:
        # Denoising autoencoder: active in training only (Keras passes
        # training=False at inference and in the exported signatures).
        x = keras.layers.GaussianNoise(cfg.input_noise, seed=cfg.seed, name="input_noise")(x)
    for i, units in enumerate(sizes[:-1]):
        name = "encoding" if i == len(cfg.hidden_units) else f"dense_{i}"
        x = keras.layers.Dense(units, activation=cfg.activation, name=name)(x)
    outputs = keras.layers.Dense(sizes[-1], activation=cfg.output_activation,
                                 name="reconstruction")(x)
    model = keras.Model(inputs, outputs, name="autoencoder")
    if compile:
        model.compile(optimizer=keras.optimizers.Adam(learning_rate=cfg.learning_rate),
                      loss="mse")
    return model
