"""The trimmed MSE (components/model/trimmed.py) and its use by the Trainer's fit."""
import numpy as np
import pytest
import tensorflow as tf

from components.model import trimmed


def test_trimmed_mse_leaves_out_the_largest_row_errors():
    y = np.zeros((10, 2), np.float32)
    pred = np.zeros((10, 2), np.float32)
    pred[:, 0] = np.arange(10)  # row errors 0, 0.5, 2, 4.5, ... (x^2 / 2)
    rows = (np.arange(10) ** 2) / 2.0
    assert float(trimmed.trimmed_mse(y, pred, 0.0)) == pytest.approx(rows.mean())
    assert float(trimmed.trimmed_mse(y, pred, 0.25)) == pytest.approx(rows[:8].mean())
    assert float(trimmed.trimmed_mse(y, pred, 0.99)) == pytest.approx(rows[:1].mean())


def test_the_schedule_warms_up_with_plain_mse_then_trims():
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(3)])
    schedule = trimmed.compile_trimmed(model, 1e-3, 0.25, warmup_epochs=2)
    seen = []

    class Watch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(float(schedule.variable.numpy()))

    x = np.random.default_rng(0).normal(size=(64, 3)).astype(np.float32)
    model.fit(x, x, epochs=4, batch_size=16, verbose=0, callbacks=[schedule, Watch()])
    assert seen == [0.0, 0.0, 0.25, 0.25]


def test_trimming_keeps_the_contamination_out_of_the_fit():
    """Rows on a line plus far-off anomalies: trained trimmed, the anomalies keep
    larger errors relative to the normal rows than with a plain MSE."""
    import keras

    rng = np.random.default_rng(1)
    t = rng.normal(size=(600, 1))
    normal = np.hstack([t, 2 * t, -t, 0.5 * t]) + 0.05 * rng.normal(size=(600, 4))
    anomalies = rng.normal(scale=3.0, size=(60, 4))
    x = np.vstack([normal, anomalies]).astype(np.float32)
    ratios = {}
    for q in (0.0, 0.25):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2),
                                  keras.layers.Dense(4)])
        cb = trimmed.compile_trimmed(model, 1e-2, q, warmup_epochs=2)
        model.fit(x, x, epochs=40, batch_size=64, verbose=0, callbacks=[cb])
        err = trimmed.row_squared_errors(x, model(x)).numpy()
        ratios[q] = np.median(err[600:]) / np.median(err[:600])
    assert ratios[0.25] > 1.5 * ratios[0.0], ratios
    assert tf.is_tensor(trimmed.trimmed_mse(x, x, 0.1))
