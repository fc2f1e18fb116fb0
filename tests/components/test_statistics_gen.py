"""StatisticsGen in this process writes the statistics TFDV's Beam pipeline writes
(components/statistics_gen/in_process.py)."""
import apache_beam as beam
import numpy as np
import pyarrow as pa
import tensorflow_data_validation as tfdv
from tensorflow_data_validation.statistics import stats_options

from components.statistics_gen import in_process


def _batches(n=3000, rows_per_batch=700, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.normal(50, 10, n).astype(np.float32)
    missing = rng.random(n) < 0.1
    cats = rng.choice([b"a", b"b", b"c", b"d"], size=n, p=[0.4, 0.3, 0.2, 0.1])
    ids = [f"id{i}".encode() for i in range(n)]  # every value once: uniques, rank histogram
    label = (rng.random(n) < 0.05).astype(np.int64)
    columns = {
        "x": pa.array([[] if m else [float(v)] for v, m in zip(x, missing)],
                      type=pa.large_list(pa.float32())),
        "cat": pa.array([[c] for c in cats], type=pa.large_list(pa.binary())),
        "id": pa.array([[i] for i in ids], type=pa.large_list(pa.binary())),
        "label": pa.array([[int(v)] for v in label], type=pa.large_list(pa.int64())),
    }
    table = pa.table(columns)
    return table.to_batches(max_chunksize=rows_per_batch)


def _by_name(stats):
    (dataset,) = stats.datasets
    return dataset, {f.path.step[0]: f for f in dataset.features}


def test_in_process_statistics_are_tfdvs_beam_statistics(tmp_path):
    batches = _batches()
    path = str(tmp_path / "FeatureStats.pb")
    with beam.Pipeline() as p:  # what the stock StatisticsGen executor runs
        _ = (p | beam.Create(batches, reshuffle=False)
             | tfdv.GenerateStatistics(stats_options.StatsOptions())
             | tfdv.WriteStatisticsToBinaryFile(path))
    beam_stats = tfdv.load_stats_binary(path)
    here = in_process.statistics(iter(batches))
    beam_ds, beam_f = _by_name(beam_stats)
    here_ds, here_f = _by_name(here)
    assert here_ds.num_examples == beam_ds.num_examples == 3000
    assert set(here_f) == set(beam_f) == {"x", "cat", "id", "label"}
    for name in ("cat", "id"):  # exact top-k and uniques, as the Beam transform computes
        assert here_f[name].string_stats == beam_f[name].string_stats, name
    for name in ("x", "label"):
        h, b = here_f[name].num_stats, beam_f[name].num_stats
        assert h.common_stats.num_non_missing == b.common_stats.num_non_missing
        assert h.common_stats.num_missing == b.common_stats.num_missing
        np.testing.assert_allclose([h.mean, h.std_dev, h.min, h.max, h.median],
                                   [b.mean, b.std_dev, b.min, b.max, b.median], rtol=1e-9)
        assert [(k.low_value, k.high_value) for k in h.histograms[0].buckets] == \
            [(k.low_value, k.high_value) for k in b.histograms[0].buckets]
    assert _rounded(here) == _rounded(beam_stats)  # and the rest of the protos: equal


def _rounded(stats):
    """The statistics with means and deviations to 12 digits (summation order aside)."""
    import copy

    stats = copy.deepcopy(stats)
    for f in stats.datasets[0].features:
        if f.HasField("num_stats"):
            f.num_stats.mean = float(f"{f.num_stats.mean:.12g}")
            f.num_stats.std_dev = float(f"{f.num_stats.std_dev:.12g}")
    return stats


def test_no_rows_is_left_to_the_beam_path():
    empty = pa.RecordBatch.from_arrays([pa.array([], type=pa.large_list(pa.float32()))],
                                       names=["x"])
    assert in_process.statistics(iter([empty])) is None


def test_options_only_beam_reproduces_are_not_supported():
    assert in_process.supported(stats_options.StatsOptions())
    assert not in_process.supported(stats_options.StatsOptions(sample_rate=0.5))
    assert not in_process.supported(stats_options.StatsOptions(
        enable_semantic_domain_stats=True))
