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
