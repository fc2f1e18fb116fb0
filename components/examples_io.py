"""Reading an Examples split as Arrow record batches, whatever its payload.

ExampleGen (components/example_gen) writes Parquet by default and GZIP
TFRecords of tf.Examples on request; splits written by the stock
CsvExampleGen (earlier runs, a baseline's eval rows) are TFRecords too. Both
come out of here as `pyarrow.RecordBatch`es with one `large_list` column per
feature (TFXIO's layout), so the Trainer and the Evaluator have one code path:

    iter_record_batches(split_uri, columns)      plain Python (Trainer, tests)
    ReadRecordBatches(split_uri, columns)        a Beam source (Evaluator)
    column_values(batch, name) -> numpy [rows]   one value per row, checked
    values_or_missing(batch, name)               one value or NaN / b"" per row

Memory holds one batch at a time.
"""
import os
from typing import Iterable, Iterator, List, Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

PARQUET, TFRECORD = "parquet", "tfrecord"
DEFAULT_BATCH_ROWS = 65536


def split_files(split_uri: str) -> List[str]:
    import tensorflow as tf

    files = sorted(f for f in tf.io.gfile.glob(os.path.join(split_uri, "*"))
                   if not tf.io.gfile.isdir(f))
    if not files:
        raise ValueError(f"no example files in {split_uri}")
    return files


def payload_of(files: Sequence[str]) -> str:
    kinds = {PARQUET if f.endswith(".parquet") else TFRECORD for f in files}
    if len(kinds) != 1:
        raise ValueError(f"mixed example file formats in {os.path.dirname(files[0])}")
    return kinds.pop()


def _open(path: str):
    if "://" not in path:
        return pa.OSFile(path, "rb")
    import tensorflow as tf

    return pa.PythonFile(tf.io.gfile.GFile(path, "rb"), mode="r")


def iter_record_batches(split_uri: str, columns: Optional[Sequence[str]] = None,
                        batch_rows: int = DEFAULT_BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """Record batches of at most `batch_rows` rows of the split, in file order."""
    files = split_files(split_uri)
    if payload_of(files) == PARQUET:
        import pyarrow.parquet as pq

        for path in files:
            with _open(path) as f:
                for batch in pq.ParquetFile(f).iter_batches(
                        batch_size=batch_rows, columns=list(columns) if columns else None):
                    yield batch
        return
    import tensorflow as tf

    decoder = _tf_example_decoder()
    for records in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(batch_rows):
        yield _project(decoder.DecodeBatch(records.numpy().tolist()), columns)


def _tf_example_decoder():
    from tfx_bsl.coders import example_coder

    return example_coder.ExamplesToRecordBatchDecoder()


def _project(batch: pa.RecordBatch, columns: Optional[Sequence[str]]) -> pa.RecordBatch:
    if not columns:
        return batch
    names = batch.schema.names
    missing = [c for c in columns if c not in names]
    if missing:
        raise ValueError(f"examples have no column(s) {', '.join(missing)}")
    return pa.RecordBatch.from_arrays([batch.column(names.index(c)) for c in columns],
                                      names=list(columns))


def column_values(batch: pa.RecordBatch, name: str) -> np.ndarray:
    """The column as a flat numpy array; every row must hold exactly one value."""
    col = batch.column(batch.schema.get_field_index(name))
    if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
        if col.null_count or len(col.flatten()) != len(col):
            raise ValueError(f"feature {name}: every example must hold exactly one value")
        col = col.flatten()
    return col.to_numpy(zero_copy_only=False)


def values_or_missing(batch: pa.RecordBatch, name: str) -> np.ndarray:
    """The column as one value per row: a number (NaN when the row has none) or bytes
    (b"" when it has none). Rows with several values are an error."""
    col = batch.column(batch.schema.get_field_index(name))
    if not (pa.types.is_list(col.type) or pa.types.is_large_list(col.type)):
        values = col.to_numpy(zero_copy_only=False)
        return values if values.dtype != object else np.array(
            [b"" if v is None else v for v in values], dtype=object)
    lengths = pc.fill_null(pc.list_value_length(col), 0).to_numpy(zero_copy_only=False)
    if (lengths > 1).any():
        raise ValueError(f"feature {name}: an example holds more than one value")
    present = lengths == 1
    flat = col.flatten()
    if pa.types.is_binary(flat.type) or pa.types.is_large_binary(flat.type) or \
            pa.types.is_string(flat.type) or pa.types.is_large_string(flat.type):
        out = np.full(len(col), b"", dtype=object)
        out[present] = flat.to_numpy(zero_copy_only=False)
        return out
    out = np.full(len(col), np.nan, dtype=np.float64)
    out[present] = flat.to_numpy(zero_copy_only=False)
    return out


def feature_matrix(batch: pa.RecordBatch, features: Sequence[str],
                   dtype=np.float32) -> np.ndarray:
    """[rows, len(features)] matrix of the raw values, in `features` order."""
    x = np.empty((batch.num_rows, len(features)), dtype=dtype)
    for j, name in enumerate(features):
        x[:, j] = column_values(batch, name)
    return x


# ----------------------------------------------------------------------------- Beam
def ReadRecordBatches(split_uri: str, columns: Optional[Sequence[str]] = None,
                      batch_rows: int = DEFAULT_BATCH_ROWS):
    """A Beam PTransform (root): the split as record batches of <= batch_rows rows.

    Parquet goes through Beam's splittable Parquet source (row groups);
    TFRecords through ReadFromTFRecord + BatchElements + tfx_bsl's decoder.
    """
    import apache_beam as beam

    files = split_files(split_uri)
    pattern = os.path.join(split_uri, "*")
    cols = list(columns) if columns else None

    @beam.ptransform_fn
    def _read(pipeline):
        if payload_of(files) == PARQUET:
            return (pipeline
                    | "ReadParquet" >> beam.io.ReadFromParquetBatched(pattern, columns=cols)
                    | "ToBatches" >> beam.FlatMap(lambda t: t.to_batches(batch_rows)))
        return (pipeline
                | "ReadTFRecord" >> beam.io.ReadFromTFRecord(pattern)
                | "Batch" >> beam.BatchElements(min_batch_size=min(64, batch_rows),
                                                max_batch_size=batch_rows)
                | "Decode" >> beam.Map(_decode_examples, cols))

    return _read()


def _decode_examples(records: Iterable[bytes], columns) -> pa.RecordBatch:
    return _project(_tf_example_decoder().DecodeBatch(list(records)), columns)
