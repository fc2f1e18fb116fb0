"""The Transform analysis done in this process writes the transform graph TFT's Beam analysis
writes: the same z-scores, vocabularies and outputs (components/transform_analysis/analysis.py)."""
import os

import numpy as np
import pyarrow as pa
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform import impl_helper
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from components import beam_local
from components.columns import ColumnRoles, indicator_name, transformed_name, vocabulary_name
from components.transform import preprocessing_fn
from components.transform_analysis import analysis

ROLES = {"label": "label", "numeric": ["amount", "n"], "categorical": ["cat", "tie"],
         "passthrough": ["id"], "indicators": ["amount"], "max_categories": 4,
         "min_frequency": 3}
SPEC = {"amount": tf.io.VarLenFeature(tf.float32), "n": tf.io.FixedLenFeature([1], tf.int64),
        "cat": tf.io.VarLenFeature(tf.string), "tie": tf.io.FixedLenFeature([1], tf.string),
        "id": tf.io.VarLenFeature(tf.string), "label": tf.io.FixedLenFeature([1], tf.int64)}


def _rows(n=400, seed=7):
    rng = np.random.default_rng(seed)
    amount = rng.gamma(2.0, 30.0, n)
    missing = rng.random(n) < 0.15
    # whitespace variants of one value, empty cells, a value with a line break, a rare one
    cat = rng.choice([b"a", b" a", b"b ", b"c", b"", b"x\ny", b"d"], size=n,
                     p=[0.3, 0.1, 0.2, 0.15, 0.1, 0.1, 0.05]).astype(object)
    cat[[3, 30, 300]] = b"rare"
    # five values with equal counts: ties broken as TFT does (the larger bytes first)
    tie = np.array([b"p", b"q", b"r", b"s", b"t"])[np.arange(n) % 5]
    rows = []
    for i in range(n):
        rows.append({"amount": [] if missing[i] else [float(amount[i])],
                     "n": [int(rng.integers(0, 50))],
                     "cat": [] if cat[i] == b"" else [cat[i]], "tie": [tie[i]],
                     "id": [f"T{i}".encode()], "label": [int(rng.random() < 0.05)]})
    return rows


def _record_batch(rows):
    """The rows as ExampleGen's Parquet holds them: one large_list column per feature."""
    types = {"amount": pa.float32(), "n": pa.int64(), "cat": pa.binary(), "tie": pa.binary(),
             "id": pa.binary(), "label": pa.int64()}
    return pa.RecordBatch.from_arrays(
        [pa.array([r[k] for r in rows], type=pa.large_list(t)) for k, t in types.items()],
        names=list(types))


def _tensors(rows):
    out = {}
    for key, spec in SPEC.items():
        values = [r[key] for r in rows]
        if isinstance(spec, tf.io.VarLenFeature):
            out[key] = tf.ragged.constant(values, dtype=spec.dtype).to_sparse()
        else:
            out[key] = tf.constant(values, dtype=spec.dtype)
    return out


def _beam_graph(rows, out_dir, config):
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(SPEC))
    with tft_beam.Context(temp_dir=os.path.join(out_dir, "tmp"), force_tf_compat_v1=True):
        transform_fn = (rows, metadata) | tft_beam.AnalyzeDataset(
            lambda inputs: preprocessing_fn(inputs, config))
        _ = transform_fn | tft_beam.WriteTransformFn(out_dir)
    return tft.TFTransformOutput(out_dir)


def _in_place_graph(rows, out_dir, config):
    """What TFX's in-place Transform does (tfx Transform executor `_RunInPlaceImpl`)."""
    result = analysis.analyze([_record_batch(rows)], ColumnRoles.from_dict(config["columns"]))
    assert result.answered_everything(SPEC)
    config = dict(config, analysis=analysis.custom_config_analysis(
        result, os.path.join(out_dir, "vocabularies")))
    type_specs = {k: tf.SparseTensorSpec([None, None], s.dtype)
                  if isinstance(s, tf.io.VarLenFeature) else tf.TensorSpec([None, 1], s.dtype)
                  for k, s in SPEC.items()}
    graph_dir = os.path.join(out_dir, "graph")
    impl_helper.analyze_in_place(lambda inputs: preprocessing_fn(inputs, config), True, SPEC,
                                 type_specs, graph_dir)
    return tft.TFTransformOutput(graph_dir)


def test_in_process_analysis_writes_the_graph_tfts_beam_analysis_writes(tmp_path):
    rows = _rows()
    config = {"columns": ROLES}
    beam = _beam_graph(rows, str(tmp_path / "beam"), config)
    here = _in_place_graph(rows, str(tmp_path / "here"), config)
    for key in ("cat", "tie"):
        assert here.vocabulary_by_name(vocabulary_name(key)) == beam.vocabulary_by_name(
            vocabulary_name(key)), key
        assert here.vocabulary_size_by_name(vocabulary_name(key)) == \
            beam.vocabulary_size_by_name(vocabulary_name(key))
    # TFT's rules: whitespace stripped ("a" twice as often), the missing category, no value
    # with a line break, "rare" below min_frequency, ties by the larger bytes
    vocab = here.vocabulary_by_name(vocabulary_name("cat"))
    assert vocab[0] == b"a" and b"__missing__" in vocab and b" a" not in vocab
    assert b"x\ny" not in vocab and b"rare" not in vocab
    assert here.vocabulary_by_name(vocabulary_name("tie")) == [b"t", b"s", b"r", b"q"]
    got = here.transform_features_layer()(_tensors(rows))
    want = beam.transform_features_layer()(_tensors(rows))
    assert set(got) == set(want) == {transformed_name(k) for k in ("amount", "n", "cat", "tie")
                                     } | {transformed_name(indicator_name("amount")), "label"}
    for key in want:
        np.testing.assert_allclose(got[key].numpy(), want[key].numpy(), rtol=1e-5, atol=1e-5,
                                   err_msg=key)
    assert here.transformed_feature_spec() == beam.transformed_feature_spec()


def test_moments_merged_over_batches_equal_one_pass():
    rng = np.random.default_rng(1)
    x = rng.normal(100.0, 5.0, 10_001).astype(np.float32)
    x[::7] = np.nan
    whole, parts = analysis._Moments(), analysis._Moments()
    whole.add(x.astype(np.float64))
    for chunk in np.array_split(x.astype(np.float64), 13):
        parts.add(chunk)
    present = x[~np.isnan(x)].astype(np.float64)
    np.testing.assert_allclose(parts.result(), [present.mean(), present.var()], rtol=1e-12)
    np.testing.assert_allclose(parts.result(), whole.result(), rtol=1e-12)


def test_a_column_it_cannot_answer_is_left_to_tft():
    roles = ColumnRoles.from_dict({"numeric": ["multi", "empty", "ok"], "categorical": ["c"]})
    batch = pa.RecordBatch.from_arrays(
        [pa.array([[1.0, 2.0], [3.0]], type=pa.large_list(pa.float32())),
         pa.array([[], []], type=pa.large_list(pa.float32())),
         pa.array([[1.0], [2.0]], type=pa.large_list(pa.float32())),
         pa.array([[1.0], [2.0]], type=pa.large_list(pa.float32()))],
        names=["multi", "empty", "ok", "c"])
    result = analysis.analyze([batch], roles)
    assert set(result.numeric()) == {"ok"}  # several values in a row; no value at all
    assert result.vocabularies() == {}  # numbers in a categorical column
    assert not result.answered_everything(batch.schema.names)


def test_an_empty_vocabulary_holds_tfts_dummy_token():
    roles = ColumnRoles.from_dict({"categorical": ["c"], "min_frequency": 5})
    batch = pa.RecordBatch.from_arrays([pa.array([[b"a"], [b"b"]], type=pa.large_list(
        pa.binary()))], names=["c"])
    assert analysis.analyze([batch], roles).vocabularies() == {
        "c": [analysis.EMPTY_VOCABULARY_TOKEN]}


@pytest.mark.parametrize("args,local", [
    ([], True), (None, True), (["--runner=DirectRunner"], True),
    (["--runner", "DirectRunner", "--direct_running_mode=in_memory"], True),
    (["--direct_running_mode=multi_threading"], True),
    (["--direct_running_mode=multi_processing", "--direct_num_workers=2"], False),
    (["--runner=PortableRunner", "--job_endpoint=localhost:8099"], False),
    (["--runner=FlinkRunner"], False), (["--runner=DataflowRunner"], False),
])
def test_which_beam_arguments_keep_the_work_in_this_process(args, local):
    assert beam_local.runs_in_this_process(args) is local
