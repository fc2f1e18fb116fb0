"""The README's TensorBoard command starts and serves Keras loss scalars (setuptools<81).

TensorBoard 2.16 imports `pkg_resources`, which setuptools 81 removed: with an
unpinned setuptools the README's command fails with ModuleNotFoundError. A
tiny Keras fit writes `train/` and `validation/` event files through
`keras.callbacks.TensorBoard`, as the Trainer does into
`Trainer/model_run/<id>/` (tests/e2e/test_first_run.py checks the real
Trainer's); the venv's `tensorboard` must serve them over HTTP.
"""
import numpy as np
import pytest

from tests.helpers.tensorboard import scalars, tensorboard

EPOCHS = 3


def _fit_with_tensorboard(log_dir: str) -> None:
    import keras

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="relu"),
                              keras.layers.Dense(4)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(x, x, validation_split=0.25, epochs=EPOCHS, batch_size=16, verbose=0,
              callbacks=[keras.callbacks.TensorBoard(log_dir=log_dir, update_freq="epoch")])


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_tensorboard_serves_the_keras_loss_scalars(tmp_path):
    _fit_with_tensorboard(str(tmp_path / "model_run" / "1"))
    with tensorboard(str(tmp_path / "model_run")) as base:
        got = scalars(base, ["1/train", "1/validation"])
    for run, points in got.items():
        assert [step for _, step, _ in points] == list(range(EPOCHS)), (run, points)
        assert all(np.isfinite(v) and v > 0 for _, _, v in points), (run, points)
