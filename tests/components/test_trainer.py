"""The Trainer's data path (components/trainer/data.py TrainingData), without TFX.

In memory while the rows fit `model.memory_budget_mb`, else streamed every
epoch: both must train on every training row once per epoch, keep the
validation rows apart, and count what they saw.
"""
import numpy as np

from components.trainer.data import TrainingData, split_uris


def _blocks(n_blocks=5, rows=300, d=4, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_blocks):
        x = rng.normal(size=(rows, d)).astype(np.float32)
        is_val = np.arange(rows) % 100 < 20
        out.append((x[~is_val], x[is_val]))
    return out


def _rows(a):
    return sorted(map(tuple, np.round(a, 6).tolist()))


def test_in_memory_keeps_every_row():
    blocks = _blocks()
    data = TrainingData(lambda: iter(blocks), 4, budget_bytes=1 << 30)
    assert not data.streaming
    assert data.n_train == 5 * 240 and data.n_val == 5 * 60 == len(data.x_val)
    assert _rows(data.x_train) == _rows(np.concatenate([t for t, _ in blocks]))
    assert _rows(data.x_val) == _rows(np.concatenate([v for _, v in blocks]))


def test_beyond_the_budget_rows_are_streamed_every_epoch(monkeypatch):
    blocks = _blocks()
    calls = []

    def blocks_fn():
        calls.append(1)
        return iter(blocks)

    monkeypatch.setattr(TrainingData, "STREAM_VALIDATION_ROWS", 100)
    data = TrainingData(blocks_fn, 4, budget_bytes=8_000)  # < 2 blocks
    assert data.streaming and data.x_train is None
    assert data.n_train == 1200 and data.n_val == 300 and len(data.x_val) == 100
    ds = data.train_dataset(batch_size=64, seed=1)
    for _ in range(2):  # two epochs: the examples are read again, every row once
        xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
        assert all(len(x) <= 64 for x in xs)
        got = np.concatenate(xs)
        np.testing.assert_array_equal(got, np.concatenate(ys))  # autoencoder: y == x
        assert _rows(got) == _rows(np.concatenate([t for t, _ in blocks]))
    assert len(calls) == 3  # the counting pass + one per epoch


def test_split_uris_strip_the_trainer_s_glob():
    assert split_uris(["/a/Split-train/*", "/b/Split-train/*"]) == ["/a/Split-train",
                                                                    "/b/Split-train"]
    assert split_uris("/a/Split-train/*") == ["/a/Split-train"]


def test_row_errors_match_the_exported_formula():
    import keras

    from components.model.autoencoder import build_autoencoder
    from components.trainer.fit import feature_error_scale, row_errors
    from components.model.settings import ModelSettings

    keras.utils.set_random_seed(0)
    members = [build_autoencoder(3, ModelSettings(seed=s), compile=False) for s in (0, 1)]
    x = np.random.default_rng(1).normal(size=(100, 3)).astype(np.float32)
    sq = sum((x - m(x).numpy()) ** 2 for m in members) / 2
    np.testing.assert_allclose(row_errors(members, x), sq.mean(axis=1), rtol=1e-5)
    scale = feature_error_scale(members, x)
    np.testing.assert_allclose(row_errors(members, x, scale), (sq / scale).mean(axis=1),
                               rtol=1e-5)


def test_each_epoch_is_a_progress_record_and_the_fit_ends_with_a_kept_line(caplog):
    """`candidate 2/3 epoch e/E loss x val y` per epoch (Keras prints nothing, verbose=0),
    then one kept line; what pipeline/console.py shows on the terminal."""
    import logging
    import re

    from components import progress
    from components.model.settings import ModelSettings
    from components.trainer import fit

    blocks = _blocks(n_blocks=2, rows=100)
    data = TrainingData(lambda: iter(blocks), 4, budget_bytes=1 << 30)
    mcfg = ModelSettings(epochs=3, early_stopping_patience=0, batch_size=32, seed=3)
    with caplog.at_level(logging.INFO, logger=progress.LOGGER):
        _, histories = fit._fit_members(mcfg, data, (data.x_val, data.x_val), 32, 4, None,
                                        candidate=(1, 3))
    records = [r for r in caplog.records if r.name == progress.LOGGER]
    epochs = [r for r in records if not r.progress.end]
    assert [r.progress.done for r in epochs] == [1, 2, 3]
    assert all(r.progress.task == "candidate 2/3" and r.progress.total == 3
               and r.progress.sample for r in epochs)
    for r, loss, val in zip(epochs, histories[0]["loss"], histories[0]["val_loss"]):
        assert re.fullmatch(r"  candidate 2/3 epoch \d/3 loss \d+\.\d{4} val \d+\.\d{4}",
                            r.getMessage()), r.getMessage()
        assert f"loss {loss:.4f} val {val:.4f}" in r.getMessage()
    (last,) = [r for r in records if r.progress.end]
    assert last.progress.keep and "3/3 epochs" in last.getMessage()


def test_the_end_line_says_early_stop_or_the_epoch_cap():
    import logging
    from types import SimpleNamespace

    from components import progress
    from components.trainer.progress import EpochProgress, fit_label

    assert fit_label(0, 1) == "training" and fit_label(1, 3) == "candidate 2/3"
    assert fit_label(1, 3, 0, 2) == "candidate 2/3 member 1/2"
    seen = []
    handler = logging.Handler()
    handler.emit = lambda r: seen.append(r.getMessage())
    log = progress.logger()
    log.addHandler(handler)
    old = log.level
    log.setLevel(logging.INFO)
    try:
        for losses, stopped in (([0.9, 0.5, 0.4], False), ([0.9, 0.5, 0.6], True)):
            cb = EpochProgress("training", epochs=3 if not stopped else 10)
            cb.set_model(SimpleNamespace(stop_training=stopped))
            cb.on_train_begin()
            for e, v in enumerate(losses):
                cb.on_epoch_end(e, {"loss": v, "val_loss": v})
            cb.on_train_end()
    finally:
        log.removeHandler(handler)
        log.setLevel(old)
    ends = [m for m in seen if m.startswith("  training:")]
    assert "best epoch 3" in ends[0] and "epoch cap" in ends[0]
    assert "3/10 epochs" in ends[1] and "best epoch 2" in ends[1] and "stopped early" in ends[1]
