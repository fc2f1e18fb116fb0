"""CSV -> hash-split Examples without a per-row Python loop (TFX-free; the executor calls it).

    open_csv (blocks) -> list columns (one value per row) -> row hash -> bucket
      -> Parquet row group per split          (payload "parquet", default)
      -> tf.Examples, GZIP TFRecords          (payload "tfrecord")

Memory holds one block whatever the file size; see executor.py for what the
downstream components see and the rules kept from the stock executor.
"""
import logging
import os
import re
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv

BLOCK_BYTES = 16 << 20
PARQUET_COMPRESSION = "snappy"
PARQUET, TFRECORD = "parquet", "tfrecord"
EXAMPLE_FORMATS = (PARQUET, TFRECORD)
_COLUMN_ERROR = re.compile(r"In CSV column #(\d+)")


class ExampleGenError(RuntimeError):
    """Input the executor cannot turn into Examples; names the file and column."""


# ----------------------------------------------------------------------------- hashing
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)


def row_hash(columns: Sequence[np.ndarray]) -> np.ndarray:
    """A 64-bit hash of each row's values (float64 bit patterns, splitmix64 mixing).

    Deterministic across runs, files and machines: the same row always lands
    in the same split, wherever it appears. -0.0 is hashed as 0.0.
    """
    n = len(columns[0]) if columns else 0
    h = np.full(n, _GOLDEN, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for col in columns:
            v = np.asarray(col, dtype=np.float64) + 0.0  # -0.0 -> 0.0
            h ^= v.view(np.uint64)
            h += _GOLDEN
            h = (h ^ (h >> np.uint64(30))) * _MIX1
            h = (h ^ (h >> np.uint64(27))) * _MIX2
            h ^= h >> np.uint64(31)
    return h


def bucket_of(h: np.ndarray, total_buckets: int) -> np.ndarray:
    return (h % np.uint64(total_buckets)).astype(np.int64)


# ----------------------------------------------------------------------------- reading
def _is_local(path: str) -> bool:
    return "://" not in path


def _open_read(path: str):
    """pyarrow's own file for local paths; a wrapped tf.io.gfile file for gs:// & co."""
    if _is_local(path):
        return pa.OSFile(path, "rb")
    import tensorflow as tf

    return pa.PythonFile(tf.io.gfile.GFile(path, "rb"), mode="r")


def _open_write(path: str):
    if _is_local(path):
        return pa.OSFile(path, "wb")
    import tensorflow as tf

    return pa.PythonFile(tf.io.gfile.GFile(path, "wb"), mode="w")


def _makedirs(path: str) -> None:
    if _is_local(path):
        os.makedirs(path, exist_ok=True)
    else:
        import tensorflow as tf

        tf.io.gfile.makedirs(path)


def _csv_blocks(path: str, column_types: Dict[str, pa.DataType]) -> Iterator[pa.RecordBatch]:
    f = _open_read(path)
    try:
        reader = pcsv.open_csv(
            f,
            read_options=pcsv.ReadOptions(block_size=BLOCK_BYTES),
            parse_options=pcsv.ParseOptions(delimiter=",", ignore_empty_lines=True),
            convert_options=pcsv.ConvertOptions(
                column_types=column_types, timestamp_parsers=[], true_values=[],
                false_values=[], strings_can_be_null=False, quoted_strings_can_be_null=False))
        for batch in reader:
            yield batch
    finally:
        f.close()


def _numeric_type(path: str, name: str, typ: pa.DataType) -> pa.DataType:
    if pa.types.is_integer(typ):
        return pa.int64()
    if pa.types.is_floating(typ) or pa.types.is_null(typ):
        return pa.float64()
    raise ExampleGenError(f"{path}: column {name}: not numeric ({typ}); every column must be "
                          f"a number")


def _example_type(typ: pa.DataType) -> pa.DataType:
    return pa.large_list(pa.int64() if pa.types.is_integer(typ) else pa.float32())


def output_schema(columns: Sequence[str], types_: Dict[str, pa.DataType]) -> pa.Schema:
    return pa.schema([pa.field(c, _example_type(types_[c])) for c in columns])


def to_example_batch(batch: pa.RecordBatch, schema: pa.Schema) -> Tuple[pa.RecordBatch,
                                                                          List[np.ndarray]]:
    """(RecordBatch of one-value lists in `schema`, float64 columns for hashing)."""
    n = batch.num_rows
    offsets = pa.array(np.arange(n + 1, dtype=np.int64))
    arrays, values = [], []
    for field in schema:
        col = batch.column(field.name)
        if col.null_count:
            raise ExampleGenError(f"column {field.name}: {col.null_count} empty value(s); "
                                  f"the input checks quarantine such rows before ExampleGen")
        value_type = field.type.value_type
        typed = col.cast(value_type)
        values.append(col.to_numpy(zero_copy_only=False).astype(np.float64, copy=False))
        arrays.append(pa.LargeListArray.from_arrays(offsets, typed))
    return pa.RecordBatch.from_arrays(arrays, schema=schema), values


# ----------------------------------------------------------------------------- writing
class _ParquetSplitWriter:
    def __init__(self, split_dir: str, schema: pa.Schema):
        import pyarrow.parquet as pq

        _makedirs(split_dir)
        self.path = os.path.join(split_dir, "data_parquet-00000-of-00001.parquet")
        self._file = _open_write(self.path)
        self._writer = pq.ParquetWriter(self._file, schema, compression=PARQUET_COMPRESSION)
        self.rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows:
            self._writer.write_batch(batch)
            self.rows += batch.num_rows

    def close(self) -> None:
        self._writer.close()
        self._file.close()


class _TFRecordSplitWriter:
    """The stock layout: GZIP TFRecords of tf.Examples."""

    def __init__(self, split_dir: str, schema: pa.Schema):
        import tensorflow as tf
        from tfx_bsl.coders import example_coder

        _makedirs(split_dir)
        self.path = os.path.join(split_dir, "data_tfrecord-00000-of-00001.gz")
        self._encoder = example_coder.RecordBatchToExamplesEncoder()
        self._writer = tf.io.TFRecordWriter(self.path, tf.io.TFRecordOptions(
            compression_type="GZIP", compression_level=1))
        self.rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        for record in self._encoder.encode(batch):
            self._writer.write(record)
        self.rows += batch.num_rows

    def close(self) -> None:
        self._writer.close()


WRITERS = {PARQUET: _ParquetSplitWriter, TFRECORD: _TFRecordSplitWriter}


def _writer_class(payload: str):
    if payload not in WRITERS:
        raise ExampleGenError(f"payload {payload!r} is not supported (one of "
                              f"{', '.join(sorted(WRITERS))})")
    return WRITERS[payload]


class _Widen(Exception):
    """A column read as int64 holds a non-integer further down: restart as float64."""

    def __init__(self, column: str):
        super().__init__(column)
        self.column = column


def write_splits(files: Sequence[str], split_dirs: Sequence[str], buckets: Optional[List[int]],
                 payload: str) -> Dict[str, int]:
    """Streams `files` into `split_dirs`; returns rows written per split dir.

    `buckets`: cumulative hash-bucket bounds, one per split (as the stock
    `_PartitionFn`); None writes every row to the single split dir.

    Column types come from the text: pyarrow infers them from the first
    block; a later block whose text does not fit (an integer column with
    '2.5' in row 900,000) raises, and the split is written again from the
    start with that column as FLOAT. A clean numeric file is read once.
    """
    forced: Dict[str, pa.DataType] = {}
    while True:
        try:
            return _write_once(files, split_dirs, buckets, payload, forced)
        except _Widen as w:
            logging.info("column %s has non-integer values; writing the split again with it "
                         "as FLOAT", w.column)
            forced[w.column] = pa.float64()


def _write_once(files, split_dirs, buckets, payload, forced) -> Dict[str, int]:
    cls = _writer_class(payload)
    columns: Optional[List[str]] = None
    types_: Dict[str, pa.DataType] = {}
    schema, writers = None, []
    bounds = np.asarray(buckets) if buckets is not None else None
    try:
        for path in files:
            blocks = _csv_blocks(path, dict(types_) if types_ else dict(forced))
            while True:
                try:
                    block = next(blocks)
                except StopIteration:
                    break
                except pa.ArrowInvalid as e:
                    m = _COLUMN_ERROR.search(str(e))
                    names = columns or []
                    if m and int(m.group(1)) < len(names) and \
                            types_.get(names[int(m.group(1))]) == pa.int64():
                        raise _Widen(names[int(m.group(1))]) from None
                    raise ExampleGenError(f"{path}: {str(e).splitlines()[0]}") from None
                if columns is None:
                    columns = list(block.schema.names)
                    types_ = {name: forced.get(name) or _numeric_type(path, name, typ)
                              for name, typ in zip(columns, block.schema.types)}
                    schema = output_schema(columns, types_)
                    writers = [cls(d, schema) for d in split_dirs]
                elif list(block.schema.names) != columns:
                    raise ExampleGenError(f"{path}: header differs from the other files of the "
                                          f"split ({','.join(columns)})")
                try:
                    batch, values = to_example_batch(block, schema)
                except ExampleGenError as e:
                    raise ExampleGenError(f"{path}: {e}") from None
                if bounds is None:
                    writers[0].write(batch)
                    continue
                which = np.searchsorted(bounds, bucket_of(row_hash(values), int(bounds[-1])),
                                        side="right")
                for i, w in enumerate(writers):
                    idx = np.flatnonzero(which == i)
                    if len(idx) == len(which):
                        w.write(batch)
                    elif len(idx):
                        w.write(batch.take(pa.array(idx)))
    finally:
        for w in writers:
            w.close()
    if columns is None:
        raise ExampleGenError(f"{files[0] if files else '?'}: no rows")
    return {d: w.rows for d, w in zip(split_dirs, writers)}
