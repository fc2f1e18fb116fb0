"""The CSV as chunks of whole lines: plan byte ranges, read and parse one, format its scores.

Elements are chunks of rows, never single rows, so Beam's per-element cost is
paid a few dozen times per million rows, and memory holds a few chunks
whatever the file size. Input lines are copied verbatim; `reconstruction_error`
is the model's float32 value (shortest repr), `is_anomaly` is 0/1,
`top_features` lists the features with the largest shares of the row's error
("f3:0.52;f7:0.21;f0:0.09", components/model/explain.py).
"""
from typing import List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

OUTPUT_COLUMNS = ("reconstruction_error", "is_anomaly")
TOP_FEATURES_COLUMN = "top_features"
_SAMPLE_BYTES = 1 << 20
_SEEK_READ = 1 << 16


class ChunkSpec(NamedTuple):
    index: int
    path: str
    start: int   # byte offset of the first line of the chunk
    end: int     # byte offset just after its last line


class Table(NamedTuple):
    """How to read a chunk: every CSV column, the model's number and string inputs."""

    columns: Tuple[str, ...]
    numbers: Tuple[str, ...]
    strings: Tuple[str, ...]
    delimiter: str = ","


class Chunk(NamedTuple):
    index: int
    data: bytes            # the raw lines
    numbers: np.ndarray    # [rows, len(table.numbers)] float32, NaN = missing
    strings: np.ndarray    # [rows, len(table.strings)] bytes, b"" = missing


def open_file(path: str):
    return FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)


def _size(path: str) -> int:
    return FileSystems.match([path])[0].metadata_list[0].size_in_bytes


def _next_line_start(f, pos: int, size: int) -> int:
    """The offset just after the first newline at or after `pos` (or `size`)."""
    f.seek(pos)
    while pos < size:
        block = f.read(_SEEK_READ)
        if not block:
            return size
        i = block.find(b"\n")
        if i >= 0:
            return pos + i + 1
        pos += len(block)
    return size


def plan_chunks(files: Sequence[str], rows_per_chunk: int) -> Tuple[bytes, List[ChunkSpec]]:
    """(header line, chunk specs): line-aligned byte ranges of ~rows_per_chunk rows.

    Costs a header read, a 1 MB sample and one short read per chunk; the
    input check has already guaranteed one record per line (no quoted
    newlines can occur in a valid numeric CSV).
    """
    chunks: List[ChunkSpec] = []
    header = b""
    for path in files:
        size = _size(path)
        with open_file(path) as f:
            first = f.readline()
            if not header:
                header = first.rstrip(b"\r\n")
            start = len(first)
            sample = f.read(_SAMPLE_BYTES)
            lines = max(1, sample.count(b"\n"))
            per_line = max(1.0, len(sample) / lines) if sample else 1.0
            step = max(1, int(rows_per_chunk * per_line))
            pos = start
            while pos < size:
                end = size if pos + step >= size else _next_line_start(f, pos + step, size)
                chunks.append(ChunkSpec(len(chunks), path, pos, end))
                pos = end
    return header, chunks


def parse_table(data: bytes, table: Table) -> Tuple[np.ndarray, np.ndarray]:
    """(numbers float32, strings bytes) of the model's columns in CSV `data` (no header).

    pyarrow's streaming reader, not `read_csv`: on Python 3.10, every
    `read_csv` call runs a reference-cycle workaround (`gc.get_referrers`)
    whose cost grows with the heap, seconds per call once TensorFlow is loaded.
    Empty cells (and `NA`, `nan`, ...) are missing: NaN, b"".
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    from components.input_checks.arrow_numbers import ARROW_NULLS, numbers_from_text

    numbers, strings = list(table.numbers), list(table.strings)

    def batches(types_):
        reader = pcsv.open_csv(
            pa.BufferReader(data),
            read_options=pcsv.ReadOptions(column_names=list(table.columns),
                                          block_size=max(1 << 20, min(len(data) + 1, 1 << 28))),
            parse_options=pcsv.ParseOptions(delimiter=table.delimiter, ignore_empty_lines=True,
                                            newlines_in_values=True),
            convert_options=pcsv.ConvertOptions(
                include_columns=numbers + strings, null_values=ARROW_NULLS,
                strings_can_be_null=True, quoted_strings_can_be_null=True,
                column_types=types_))
        return list(reader)

    text = {f: pa.string() for f in strings}
    try:
        found = batches({**{f: pa.float64() for f in numbers}, **text})
    except pa.ArrowInvalid:
        # e.g. '+3' or ' NA ': valid for the input checks, not for pyarrow's
        # reader; read as text and converted as the checks read numbers
        found = [numbers_from_text(b, {f: pa.float64() for f in numbers})
                 for b in batches({**{f: pa.string() for f in numbers}, **text})]
    n = sum(b.num_rows for b in found)
    x = np.empty((n, len(numbers)), dtype=np.float32)
    t = np.empty((n, len(strings)), dtype=object)
    row = 0
    for b in found:
        for j, name in enumerate(numbers):
            x[row:row + b.num_rows, j] = b.column(name).to_numpy(zero_copy_only=False)
        for j, name in enumerate(strings):
            col = pc.fill_null(pc.utf8_trim_whitespace(b.column(name)), "")
            t[row:row + b.num_rows, j] = col.cast(pa.binary()).to_numpy(zero_copy_only=False)
        row += b.num_rows
    return x, t


def _lines(data: bytes) -> List[bytes]:
    lines = data.split(b"\n")
    if b"\r" in data:
        lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
    return [line for line in lines if line]


def read_chunk(spec, table):
    """ChunkSpec -> Chunk (no type annotations: Beam would infer schema coders)."""
    with open_file(spec.path) as f:
        f.seek(spec.start)
        data = f.read(spec.end - spec.start)
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
    return Chunk(spec.index, data, *parse_table(data, table))


def _format_vectorized(data: bytes, errors: np.ndarray, flags: np.ndarray,
                       extra=None, sep: str = ",") -> Optional[bytes]:
    """Each line of `data` + sep + error + sep + flag (+ sep + extra), all in Arrow kernels.

    The lines become an Arrow string array without copying: the values are
    "\n<line>" (offsets at the newlines of "\n" + data), joined element-wise
    with the error and flag strings. None when the chunk has empty lines or
    a row count that does not match (the caller falls back).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if not data:
        return b"" if len(errors) == 0 else None
    body = b"\n" + (data[:-1] if data.endswith(b"\n") else data)
    if b"\n\n" in body:
        return None
    starts = np.flatnonzero(np.frombuffer(body, dtype=np.uint8) == 10)
    if len(starts) != len(errors) or len(body) >= 2 ** 31:
        return None
    offsets = np.empty(len(starts) + 1, dtype=np.int32)
    offsets[:-1] = starts
    offsets[-1] = len(body)
    lines = pa.StringArray.from_buffers(len(starts), pa.py_buffer(offsets), pa.py_buffer(body))
    err_text = pa.array(np.asarray(errors, dtype=np.float32)).cast(pa.string())
    flag_text = pc.if_else(pa.array(np.asarray(flags, dtype=bool)), "1", "0")
    columns = [lines, err_text, flag_text] + ([extra] if extra is not None else [])
    joined = pc.binary_join_element_wise(*columns, sep)
    out_offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32,
                                count=len(joined) + 1, offset=4 * joined.offset)
    out = memoryview(joined.buffers()[2])[int(out_offsets[0]) + 1:int(out_offsets[-1])]
    return bytes(out) + b"\n"


def quote_cells(values, sep: str):
    """CSV-quotes the cells of a pyarrow string array when one holds `sep`, a
    quote or a line break (top_features lists "name:share;..." and names are
    the user's: a `;` file, or a column name with a comma, needs quotes)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    specials = (sep, '"', "\n", "\r")
    if not any(pc.any(pc.match_substring(values, c)).as_py() for c in specials):
        return values
    escaped = pc.replace_substring(values, '"', '""')
    return pc.binary_join_element_wise(pa.scalar('"'), escaped, pa.scalar('"'), "")


def format_chunk(result, feature_names: Sequence[str] = (), top_k: int = 0, sep: str = ","):
    """PredictionResult -> (index, output bytes, rows, flagged); `sep`: the delimiter.

    With `top_k` > 0, a `top_features` column follows is_anomaly
    (components/model/explain.py: the k features with the largest share of the
    row's error, "name:share;...").
    """
    import pyarrow as pa

    chunk: Chunk = result.example
    errors = result.inference["reconstruction_error"]
    flags = result.inference["is_anomaly"]
    extra = None
    if top_k:
        from components.model.explain import top_features_array

        extra = quote_cells(top_features_array(result.inference["feature_errors"],
                                               list(feature_names), k=top_k), sep)
    out = _format_vectorized(chunk.data, errors, flags, extra, sep)
    if out is None:  # empty lines in the chunk: the slow, general path
        lines = _lines(chunk.data)
        if len(lines) != len(errors):
            raise RuntimeError(f"chunk {chunk.index}: {len(lines)} lines but "
                               f"{len(errors)} scores")
        err_text = pa.array(np.asarray(errors, dtype=np.float32)).cast(pa.string()).to_pylist()
        d = sep.encode()
        flag_text = (d + b"0", d + b"1")
        tails = ([d + t.encode() for t in extra.to_pylist()] if extra is not None
                 else [b""] * len(lines))
        out = b"".join([line + d + e.encode() + flag_text[f] + t + b"\n"
                        for line, e, f, t in zip(lines, err_text, flags.tolist(), tails)])
    return chunk.index, out, len(errors), int(np.count_nonzero(flags))


def output_header(header: bytes, top_k: int, sep: str = ",") -> bytes:
    names = OUTPUT_COLUMNS + ((TOP_FEATURES_COLUMN,) if top_k else ())
    return header + "".join(sep + n for n in names).encode()
