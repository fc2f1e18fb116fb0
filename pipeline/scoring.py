"""`anomaly-pipeline score`: flag the rows of a CSV with a pushed model, as a Beam pipeline.

    check the CSV (csv_checks, against the model's feature list)
    plan chunks: byte ranges of ~`rows_per_chunk` whole lines (a few seeks)
      |  Create(chunk specs) -> Reshuffle (spread over workers)
      |  Read: seek + read one range, parse the features (pyarrow)
      |  RunInference(SavedModelHandler): tf.saved_model.load, `score_features`
      |  Write: input lines verbatim + ",<reconstruction_error>,<is_anomaly>,<top_features>"
      |         to one part file per chunk
      |  Concatenate: header + parts in chunk order -> temporary file -> rename
    one JSON line on stdout (cli.py)

Elements are chunks of rows, never single rows, so Beam's per-element cost is
paid a few dozen times per million rows, and memory holds a few chunks
whatever the file size. The output has one row per input row, in input order
(checked: the row count must match the input check's count before the output
is renamed into place, so a failed run never leaves a partial output CSV).
Input columns are copied verbatim; `reconstruction_error` is the model's
float32 value (shortest repr), `is_anomaly` is 0/1, `top_features` lists the
features with the largest shares of the row's error ("f3:0.52;f7:0.21;f0:0.09",
components/explain.py; `--top-features 0` leaves the column out).

The same command runs on any Beam runner (`--beam-arg=--runner=...`); the
input, output and model paths must then be readable by the workers, and the
workers need this package installed.
"""
import io
import logging
import os
import re
import tempfile
import time
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.ml.inference.base import ModelHandler, PredictionResult, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.csv_checks import InputError, check_csv, read_header, resolve_csv_files

SIGNATURE = "score_features"
DEFAULT_ROWS_PER_CHUNK = 32768
METRICS_NAMESPACE = "anomaly_score"
OUTPUT_SUFFIX = b",reconstruction_error,is_anomaly"
TOP_FEATURES_SUFFIX = b",top_features"
_SAMPLE_BYTES = 1 << 20
_SEEK_READ = 1 << 16


# --------------------------------------------------------------------------- the model


def resolve_model_dir(path: str) -> str:
    """A SavedModel dir, or a serving_model/<name> dir whose newest version is used."""
    if path.startswith("models:/"):
        raise InputError(path=path, row=None, column=None,
                         problem="a registry URI: resolve it with resolve_model first")
    if not os.path.isdir(path):
        raise InputError(path=path, row=None, column=None, problem="model directory not found")
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return path
    versions = [d for d in os.listdir(path) if re.fullmatch(r"\d+", d)
                and os.path.exists(os.path.join(path, d, "saved_model.pb"))]
    if not versions:
        raise InputError(path=path, row=None, column=None,
                         problem="not a SavedModel (no saved_model.pb) nor a directory of "
                                 "numbered versions")
    return os.path.join(path, max(versions, key=int))


def resolve_model(model: str, registry_uri: Optional[str], download_dir: str
                  ) -> Tuple[str, Optional[Dict[str, Any]]]:
    """(SavedModel dir, registry record or None) for a directory or a models:/ URI."""
    if not model.startswith("models:/"):
        return resolve_model_dir(model), None
    uri = registry_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise InputError(path=model, problem="a registry URI needs the registry: pass "
                                             "--registry-uri (e.g. sqlite:///runs/mlflow.db) "
                                             "or set MLFLOW_TRACKING_URI")
    from components.registry import client

    try:
        model_dir, info = client.resolve(uri, model, download_dir=download_dir)
    except client.RegistryError as e:
        raise InputError(path=model, problem=f"{e} in {uri}") from None
    info["uri"] = uri
    return model_dir, info


class SavedModelHandler(ModelHandler):
    """RunInference handler: one element = one chunk of rows.

    `load_model` loads the SavedModel with `tf.saved_model.load` (Keras
    loading breaks in TFX 1.16, tensorflow/tfx#7782); `run_inference` calls
    the `score_features` signature on the chunk's [n, d] float32 matrix.
    """

    def __init__(self, model_dir: str):
        super().__init__()
        self._model_dir = model_dir

    def load_model(self):
        from components.scorer import SavedModelScorer

        return SavedModelScorer(self._model_dir)

    def run_inference(self, batch: Sequence["Chunk"], model, inference_args=None
                      ) -> Iterable[PredictionResult]:
        return [PredictionResult(chunk, model.score_matrix(chunk.features)) for chunk in batch]

    def get_num_bytes(self, batch: Sequence["Chunk"]) -> int:
        return sum(len(c.data) for c in batch)  # the default pickles the batch

    def batch_elements_kwargs(self):
        return {"min_batch_size": 1, "max_batch_size": 1}  # a chunk is already a batch

    def get_metrics_namespace(self) -> str:
        return METRICS_NAMESPACE

    def __repr__(self):
        return f"SavedModelHandler({self._model_dir!r})"


# --------------------------------------------------------------------------- chunks


class ChunkSpec(NamedTuple):
    index: int
    path: str
    start: int   # byte offset of the first line of the chunk
    end: int     # byte offset just after its last line


class Chunk(NamedTuple):
    index: int
    data: bytes            # the raw lines
    features: np.ndarray   # [rows, d] float32, model feature order


def _open(path: str):
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
        with _open(path) as f:
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


def _parse_features(data: bytes, columns: Sequence[str], features: Sequence[str]
                    ) -> np.ndarray:
    """[rows, d] float32 of the feature columns of CSV `data` (no header).

    pyarrow's streaming reader, not `read_csv`: on Python 3.10, every
    `read_csv` call runs a reference-cycle workaround (`gc.get_referrers`)
    whose cost grows with the heap, seconds per call once TensorFlow is loaded.
    """
    import pyarrow as pa
    import pyarrow.csv as pcsv

    x = None
    try:
        reader = pcsv.open_csv(
            pa.BufferReader(data),
            read_options=pcsv.ReadOptions(column_names=list(columns),
                                          block_size=max(1 << 20, min(len(data) + 1, 1 << 28))),
            parse_options=pcsv.ParseOptions(delimiter=",", ignore_empty_lines=True),
            convert_options=pcsv.ConvertOptions(
                include_columns=list(features),
                column_types={f: pa.float64() for f in features}))
        batches = list(reader)
        n = sum(b.num_rows for b in batches)
        x = np.empty((n, len(features)), dtype=np.float32)
        row = 0
        for b in batches:
            for j in range(len(features)):
                x[row:row + b.num_rows, j] = b.column(j).to_numpy(zero_copy_only=False)
            row += b.num_rows
        return x
    except (pa.ArrowInvalid, ValueError):
        pass  # e.g. '+3', valid for the input check but not for Arrow
    import pandas as pd

    frame = pd.read_csv(io.BytesIO(data), header=None, names=list(columns),
                        usecols=list(features), dtype=np.float64, skipinitialspace=True,
                        float_precision="round_trip", skip_blank_lines=True)
    return frame[list(features)].to_numpy(dtype=np.float32)


def _lines(data: bytes) -> List[bytes]:
    lines = data.split(b"\n")
    if b"\r" in data:
        lines = [line[:-1] if line.endswith(b"\r") else line for line in lines]
    return [line for line in lines if line]


def read_chunk(spec, columns, features):
    """ChunkSpec -> Chunk (no type annotations: Beam would infer schema coders)."""
    with _open(spec.path) as f:
        f.seek(spec.start)
        data = f.read(spec.end - spec.start)
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
    return Chunk(spec.index, data, _parse_features(data, columns, features))


def _format_vectorized(data: bytes, errors: np.ndarray, flags: np.ndarray,
                       extra=None) -> Optional[bytes]:
    """Each line of `data` + "," + error + "," + flag (+ "," + extra), all in Arrow kernels.

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
    joined = pc.binary_join_element_wise(*columns, ",")
    out_offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32,
                                count=len(joined) + 1, offset=4 * joined.offset)
    out = memoryview(joined.buffers()[2])[int(out_offsets[0]) + 1:int(out_offsets[-1])]
    return bytes(out) + b"\n"


def format_chunk(result, feature_names: Sequence[str] = (), top_k: int = 0):
    """PredictionResult -> (index, output bytes, rows, flagged).

    With `top_k` > 0, a `top_features` column follows is_anomaly
    (components/explain.py: the k features with the largest share of the
    row's error, "name:share;...").
    """
    import pyarrow as pa

    chunk: Chunk = result.example
    errors = result.inference["reconstruction_error"]
    flags = result.inference["is_anomaly"]
    extra = None
    if top_k:
        from components.explain import top_features_array

        extra = top_features_array(result.inference["feature_errors"], list(feature_names),
                                   k=top_k)
    out = _format_vectorized(chunk.data, errors, flags, extra)
    if out is None:  # empty lines in the chunk: the slow, general path
        lines = _lines(chunk.data)
        if len(lines) != len(errors):
            raise RuntimeError(f"chunk {chunk.index}: {len(lines)} lines but "
                               f"{len(errors)} scores")
        err_text = pa.array(np.asarray(errors, dtype=np.float32)).cast(pa.string()).to_pylist()
        flag_text = (b",0", b",1")
        tails = ([b"," + t.encode() for t in extra.to_pylist()] if extra is not None
                 else [b""] * len(lines))
        out = b"".join([line + b"," + e.encode() + flag_text[f] + t + b"\n"
                        for line, e, f, t in zip(lines, err_text, flags.tolist(), tails)])
    return chunk.index, out, len(errors), int(np.count_nonzero(flags))


class _WritePart(beam.DoFn):
    def __init__(self, parts_dir: str, feature_names: Sequence[str] = (), top_k: int = 0):
        self._parts_dir = parts_dir
        self._feature_names, self._top_k = list(feature_names), int(top_k)
        self._rows = Metrics.counter(METRICS_NAMESPACE, "rows")
        self._flagged = Metrics.counter(METRICS_NAMESPACE, "flagged")

    def process(self, result: PredictionResult):
        index, out, rows, flagged = format_chunk(result, self._feature_names, self._top_k)
        path = FileSystems.join(self._parts_dir, f"part-{index:08d}")
        with FileSystems.create(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            f.write(out)
        self._rows.inc(rows)
        self._flagged.inc(flagged)
        yield index, path, rows


def concatenate(parts: List[Tuple[int, str, int]], header: bytes, n_chunks: int,
                expected_rows: int, tmp_path: str, output_path: str) -> str:
    """Header line (output columns) + parts in chunk order into `tmp_path`, checked,
    renamed to `output_path`."""
    parts = sorted(parts)
    if [p[0] for p in parts] != list(range(n_chunks)):
        raise RuntimeError(f"expected {n_chunks} scored chunks, got {len(parts)}")
    rows = sum(p[2] for p in parts)
    if rows != expected_rows:
        raise RuntimeError(f"scored {rows} rows, the input has {expected_rows}")
    if "://" in tmp_path:
        with FileSystems.create(tmp_path, compression_type=CompressionTypes.UNCOMPRESSED) as out:
            out.write(header + b"\n")
            for _, path, _ in parts:
                with _open(path) as f:
                    while True:
                        block = f.read(8 << 20)
                        if not block:
                            break
                        out.write(block)
    else:  # local: copy in the kernel
        with open(tmp_path, "wb") as out:
            out.write(header + b"\n")
            out.flush()
            for _, path, _ in parts:
                with open(path, "rb") as f:
                    size, sent = os.fstat(f.fileno()).st_size, 0
                    while sent < size:
                        n = os.sendfile(out.fileno(), f.fileno(), sent, size - sent)
                        if n == 0:
                            raise RuntimeError(f"short copy of {path}")
                        sent += n
    if FileSystems.exists(output_path):
        FileSystems.delete([output_path])
    FileSystems.rename([tmp_path], [output_path])
    return output_path


def output_header(header: bytes, top_k: int) -> bytes:
    return header + OUTPUT_SUFFIX + (TOP_FEATURES_SUFFIX if top_k else b"")


def build_pipeline(p: beam.Pipeline, chunks: List[ChunkSpec], header: bytes,
                   columns: Sequence[str], features: Sequence[str], model_dir: str,
                   parts_dir: str, expected_rows: int, tmp_path: str, output_path: str,
                   top_k: int = 0):
    parts = (p
             | "Chunks" >> beam.Create(chunks)
             | "Spread" >> beam.Reshuffle()
             | "Read" >> beam.Map(read_chunk, list(columns), list(features))
             | "Score" >> RunInference(SavedModelHandler(model_dir))
             | "Write" >> beam.ParDo(_WritePart(parts_dir, features, top_k)))
    header = output_header(header, top_k)
    return (parts
            | "Collect" >> beam.combiners.ToList()
            | "Concatenate" >> beam.Map(concatenate, header, len(chunks), expected_rows,
                                        tmp_path, output_path))


def _counter(result, name: str) -> Optional[int]:
    try:
        found = result.metrics().query(
            MetricsFilter().with_namespace(METRICS_NAMESPACE).with_name(name))["counters"]
    except Exception:  # noqa: BLE001 - some runners do not report metrics
        return None
    if not found:
        return None
    values = [c.committed if c.committed is not None else c.attempted for c in found]
    return int(sum(v for v in values if v is not None))


def _remove(path: str) -> None:
    try:
        if FileSystems.exists(path):
            FileSystems.delete([path])
    except Exception:  # noqa: BLE001 - best-effort cleanup
        logging.warning("could not remove %s", path)


def score_csv(model: str, input_csv: str, output_csv: str,
              batch_size: int = DEFAULT_ROWS_PER_CHUNK, registry_uri: Optional[str] = None,
              beam_args: Sequence[str] = (), top_features: Optional[int] = None
              ) -> Dict[str, Any]:
    """Scores `input_csv` (file or directory of CSVs) into `output_csv`; returns stats.

    `model`: a SavedModel directory, a serving_model/<name> directory (newest
    version), or `models:/<name>@<alias>` / `models:/<name>/<version>` looked up
    in `registry_uri` (default: $MLFLOW_TRACKING_URI). `batch_size`: rows per
    chunk (one Beam element, one model call), approximately. `top_features`:
    how many features the `top_features` column lists per row (default
    components.explain.DEFAULT_K; 0 leaves the column out).
    """
    from components.explain import DEFAULT_K

    top_k = DEFAULT_K if top_features is None else int(top_features)
    from components import scorer

    started = time.time()
    with tempfile.TemporaryDirectory(prefix="score-model-") as download_dir:
        model_dir, registry = resolve_model(model, registry_uri, download_dir)
        features: List[str] = scorer.model_features(model_dir)
        meta_label = _label_column(model_dir)
        header = read_header(input_csv)
        label_present = meta_label if meta_label and meta_label in header else None
        t0 = time.time()
        info = check_csv(input_csv, label_column=label_present, expected_features=features,
                         mode="score")
        logging.info("input checked: %d rows in %.1f s", info.rows, time.time() - t0)
        files = resolve_csv_files(input_csv)
        out_abs = output_csv if "://" in output_csv else os.path.abspath(output_csv)
        if not ("://" in out_abs) and not os.path.isdir(os.path.dirname(out_abs)):
            raise InputError(path=output_csv, problem="output directory does not exist")
        header_line, chunks = plan_chunks(files, batch_size)
        tmp = f"{out_abs}.tmp-{os.getpid()}"
        parts_dir = f"{tmp}.parts"
        if "://" not in parts_dir:
            os.makedirs(parts_dir, exist_ok=True)
        try:
            options = PipelineOptions(list(beam_args))
            p = beam.Pipeline(options=options)
            build_pipeline(p, chunks, header_line, info.columns, features, model_dir,
                           parts_dir, info.rows, tmp, out_abs, top_k=top_k)
            t0 = time.time()
            result = p.run()
            result.wait_until_finish()
            logging.info("Beam pipeline: %d chunks scored and written in %.1f s", len(chunks),
                         time.time() - t0)
        finally:
            _remove(parts_dir)
            _remove(tmp)
        flagged = _counter(result, "flagged")
        thr = scorer.threshold_info(model_dir)
        threshold = thr.get("threshold") if thr else None
        if threshold is None:
            threshold = scorer.SavedModelScorer(model_dir).threshold
    seconds = time.time() - started
    stats: Dict[str, Any] = {
        "model": (registry["source"] if registry is not None and registry.get("downloaded_to")
                  else model_dir),
        "rows": info.rows, "flagged": flagged, "output": output_csv,
        "threshold": float(threshold), "chunks": len(chunks),
        "seconds": round(seconds, 3),
        "rows_per_second": round(info.rows / seconds, 1) if seconds else None,
    }
    if registry is not None:
        stats["registry"] = {"uri": registry["uri"], "name": registry["name"],
                             "version": registry["version"], "model_uri": model}
    return stats


def _label_column(model_dir: str) -> Optional[str]:
    from components import signatures

    return signatures.read_model_metadata(model_dir).get("label_column")
