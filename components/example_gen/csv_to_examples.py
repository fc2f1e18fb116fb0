"""CSV -> hash-split Examples without a per-row Python loop (TFX-free; the executor calls it).

    open_csv (blocks) -> list columns (one value per row) -> row hash -> bucket
      -> Parquet row group per split          (payload "parquet", default)
      -> tf.Examples, GZIP TFRecords          (payload "tfrecord")

Memory holds one block whatever the file size; see executor.py for what the
downstream components see and the rules kept from the stock executor. Types
follow the column roles: a missing cell is a feature without a value.
"""
import os
import re
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

from components.columns import ColumnRoles
from components.input_checks.arrow_numbers import ARROW_NULLS, NumberError, numbers_from_text

BLOCK_BYTES = 16 << 20
PARQUET_COMPRESSION = "snappy"
PARQUET, TFRECORD = "parquet", "tfrecord"
EXAMPLE_FORMATS = (PARQUET, TFRECORD)
# Cells read as missing: the input checks' tokens.
MISSING = ARROW_NULLS


class ExampleGenError(RuntimeError):
    """Input the executor cannot turn into Examples; names the file and column."""


# ----------------------------------------------------------------------------- hashing
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1, _MIX2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_BYTE_BASE = np.uint64(0x100000001B3)  # FNV's prime, as the base of a polynomial byte hash


def _mix(h: np.ndarray, v: np.ndarray) -> np.ndarray:
    h ^= v
    h += _GOLDEN
    h = (h ^ (h >> np.uint64(30))) * _MIX1
    h = (h ^ (h >> np.uint64(27))) * _MIX2
    return h ^ (h >> np.uint64(31))


def text_hash(values: pa.Array) -> np.ndarray:
    """A 64-bit hash of each string's bytes (a polynomial in the bytes, vectorized);
    missing values hash like the empty string."""
    arr = pc.fill_null(values.cast(pa.large_binary()), b"")
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    n = len(arr)
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64, count=n + 1, offset=arr.offset * 8)
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8) if arr.buffers()[2] is not None \
        else np.zeros(0, np.uint8)
    starts, ends = offsets[:-1], offsets[1:]
    lengths = ends - starts
    out = lengths.astype(np.uint64)
    if not lengths.sum():
        return out
    longest = int(lengths.max())
    with np.errstate(over="ignore"):
        powers = np.cumprod(np.full(longest, _BYTE_BASE, dtype=np.uint64))
        first, last = int(starts[0]), int(ends[-1])
        position = np.arange(first, last) - np.repeat(starts, lengths)
        terms = data[first:last].astype(np.uint64) * powers[position]
        nonempty = lengths > 0
        out[nonempty] ^= np.add.reduceat(terms, (starts - first)[nonempty])
        return out


def row_hash(columns: Sequence[np.ndarray]) -> np.ndarray:
    """A 64-bit hash of each row's values (splitmix64 mixing of float64 bit patterns
    for numbers, of `text_hash` for strings).

    Deterministic across runs, files and machines: the same row always lands
    in the same split, wherever it appears. -0.0 is hashed as 0.0; a missing
    number as NaN.
    """
    n = len(columns[0]) if columns else 0
    h = np.full(n, _GOLDEN, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for col in columns:
            if col.dtype == np.uint64:  # already a text hash
                h = _mix(h, col)
            else:
                v = np.asarray(col, dtype=np.float64) + 0.0  # -0.0 -> 0.0
                h = _mix(h, v.view(np.uint64))
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


def _csv_blocks(path: str, column_types: Dict[str, pa.DataType], delimiter: str
                ) -> Iterator[pa.RecordBatch]:
    f = _open_read(path)
    try:
        reader = pcsv.open_csv(
            f,
            read_options=pcsv.ReadOptions(block_size=BLOCK_BYTES),
            parse_options=pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                            ignore_empty_lines=True),
            convert_options=pcsv.ConvertOptions(
                column_types=column_types, null_values=MISSING, true_values=[],
                false_values=[], timestamp_parsers=[], strings_can_be_null=True,
                quoted_strings_can_be_null=True))
        for batch in reader:
            yield batch
    finally:
        f.close()


def _file_blocks(path: str, column_types: Dict[str, pa.DataType], delimiter: str
                 ) -> Iterator[pa.RecordBatch]:
    """The blocks of one file, numbers parsed by pyarrow's CSV reader (fast).

    That reader is stricter than the input checks: `+3`, a padded ` NA `, a
    label `1.0` fail its conversion. Then the file is read again from the
    start with those columns as text, the rows already yielded skipped (same
    parser, same records), and the rest converted by `numbers_from_text`.
    """
    yielded = 0
    try:
        for block in _csv_blocks(path, column_types, delimiter):
            yield block
            yielded += block.num_rows
        return
    except pa.ArrowInvalid as e:
        if "conversion error" not in str(e):
            raise
    numbers = [c for c, t in column_types.items() if t != pa.string()]
    text_types = {c: pa.string() for c in column_types}
    for block in _csv_blocks(path, text_types, delimiter):
        if yielded >= block.num_rows:
            yielded -= block.num_rows
            continue
        if yielded:
            block, yielded = block.slice(yielded), 0
        try:
            yield numbers_from_text(block, {c: column_types[c] for c in numbers})
        except NumberError as e:
            raise ExampleGenError(str(e)) from None


def column_types(columns: Sequence[str], roles: ColumnRoles) -> Dict[str, pa.DataType]:
    """How each CSV column is read: numbers as float64, the label as int64, text as text."""
    strings = set(roles.string_columns())
    return {c: (pa.int64() if c == roles.label else pa.string() if c in strings
                else pa.float64()) for c in columns}


def output_schema(columns: Sequence[str], types_: Dict[str, pa.DataType]) -> pa.Schema:
    """TFXIO's layout: one list column per feature (bytes, int64 or float32 values)."""
    value = {pa.string(): pa.large_binary(), pa.int64(): pa.int64()}
    return pa.schema([pa.field(c, pa.large_list(value.get(types_[c], pa.float32())))
                      for c in columns])


def to_example_batch(batch: pa.RecordBatch, schema: pa.Schema
                     ) -> Tuple[pa.RecordBatch, List[np.ndarray]]:
    """(RecordBatch in `schema`, one array per column for hashing).

    A cell holds one value, or none when it is missing: an empty cell, `NA` &
    co., `nan` in a number column, an empty (or all-blank) string. The label
    is never missing (the input checks guarantee it).
    """
    arrays, hashed = [], []
    for field in schema:
        col = batch.column(field.name)
        value_type = field.type.value_type
        if pa.types.is_large_binary(value_type):
            col = pc.utf8_trim_whitespace(col)
            col = pc.if_else(pc.equal(col, ""), pa.scalar(None, pa.string()), col)
            hashed.append(text_hash(col))
        else:
            if pa.types.is_floating(col.type):
                col = pc.if_else(pc.is_nan(col), pa.scalar(None, col.type), col)
            hashed.append(pc.fill_null(col.cast(pa.float64()), np.nan).to_numpy(
                zero_copy_only=False))
            if col.null_count and value_type == pa.int64():
                raise ExampleGenError(f"column {field.name}: {col.null_count} empty label(s); "
                                      f"the input checks refuse such rows before ExampleGen")
        present = pc.invert(pc.is_null(col)).to_numpy(zero_copy_only=False)
        offsets = pa.array(np.concatenate([[0], np.cumsum(present, dtype=np.int64)]))
        values = pc.drop_null(col).cast(value_type)
        mask = None if present.all() else pa.array(~present)
        arrays.append(pa.LargeListArray.from_arrays(offsets, values, mask=mask))
    return pa.RecordBatch.from_arrays(arrays, schema=schema), hashed


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


def write_splits(files: Sequence[str], split_dirs: Sequence[str], buckets: Optional[List[int]],
                 payload: str, roles: Optional[ColumnRoles] = None,
                 delimiter: str = ",") -> Dict[str, int]:
    """Streams `files` into `split_dirs`; returns rows written per split dir.

    `buckets`: cumulative hash-bucket bounds, one per split (as the stock
    `_PartitionFn`); None writes every row to the single split dir. Column
    types follow `roles` (components/columns.py): numbers are FLOAT, the
    label INT, categorical and passthrough columns BYTES; without roles every
    column but the label is a number.
    """
    roles = roles or ColumnRoles()
    cls = _writer_class(payload)
    columns: Optional[List[str]] = None
    schema, writers = None, []
    bounds = np.asarray(buckets) if buckets is not None else None
    try:
        for path in files:
            header = _header(path, delimiter)
            if columns is None:
                columns = header
                types_ = column_types(columns, roles)
                schema = output_schema(columns, types_)
                writers = [cls(d, schema) for d in split_dirs]
            elif header != columns:
                raise ExampleGenError(f"{path}: header differs from the other files of the "
                                      f"split ({','.join(columns)})")
            try:
                for block in _file_blocks(path, types_, delimiter):
                    batch, hashed = to_example_batch(block, schema)
                    if bounds is None:
                        writers[0].write(batch)
                        continue
                    which = np.searchsorted(bounds, bucket_of(row_hash(hashed), int(bounds[-1])),
                                            side="right")
                    for i, w in enumerate(writers):
                        idx = np.flatnonzero(which == i)
                        if len(idx) == len(which):
                            w.write(batch)
                        elif len(idx):
                            w.write(batch.take(pa.array(idx)))
            except (pa.ArrowInvalid, ExampleGenError) as e:
                raise ExampleGenError(f"{path}: {_name_column(str(e), columns)}") from None
    finally:
        for w in writers:
            w.close()
    if columns is None:
        raise ExampleGenError(f"{files[0] if files else '?'}: no rows")
    return {d: w.rows for d, w in zip(split_dirs, writers)}


def _name_column(message: str, columns: Sequence[str]) -> str:
    """pyarrow's first line, with its `In CSV column #N` as the column's name."""
    line = message.splitlines()[0]
    found = re.match(r"In CSV column #(\d+): (.*)", line)
    if found and int(found.group(1)) < len(columns):
        return f"column {columns[int(found.group(1))]}: {found.group(2)}"
    return line


def _header(path: str, delimiter: str) -> List[str]:
    """The column names (the first line; a UTF-8 byte-order mark skipped)."""
    f = _open_read(path)
    try:
        line, block = b"", b""
        while b"\n" not in block:
            block = f.read(1 << 16)
            if not block:
                break
            line += block
    finally:
        f.close()
    line = line.split(b"\n", 1)[0]
    if line.startswith(b"\xef\xbb\xbf"):
        line = line[3:]
    return line.decode("utf-8").rstrip("\r\n").split(delimiter)
