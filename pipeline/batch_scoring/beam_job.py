"""The Beam pipeline of `score`: chunks -> RunInference -> part files -> one output CSV.

    Create(chunk specs) -> Reshuffle (spread over workers)
      -> Read: seek + read one range, parse the model's columns (pyarrow)
      -> RunInference(SavedModelHandler): tf.saved_model.load, `score_table`
      -> Write: input lines verbatim + ",<error>,<flag>[,<top_features>]", one part per chunk
      -> Concatenate: header + parts in chunk order -> temporary file -> rename

The output has one row per input row, in input order (checked: the row count
must match the input check's count before the output is renamed into place,
so a failed run never leaves a partial output CSV).
"""
import logging
import os
from typing import Iterable, List, Optional, Sequence, Tuple

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.ml.inference.base import ModelHandler, PredictionResult, RunInference

from pipeline.batch_scoring.chunks import (Chunk, ChunkSpec, Table, format_chunk, open_file,
                                           output_header, read_chunk)

METRICS_NAMESPACE = "anomaly_score"
PART_ROWS = ".rows-"  # part-00000003.rows-5000: chunk 3, 5,000 rows


class SavedModelHandler(ModelHandler):
    """RunInference handler: one element = one chunk of rows.

    `load_model` loads the SavedModel with `tf.saved_model.load` (Keras
    loading breaks in TFX 1.16, tensorflow/tfx#7782); `run_inference` calls
    the `score_table` signature on the chunk's numbers and strings.
    """

    def __init__(self, model_dir: str):
        super().__init__()
        self._model_dir = model_dir

    def load_model(self):
        from components.model.scorer import SavedModelScorer

        return SavedModelScorer(self._model_dir)

    def run_inference(self, batch: Sequence["Chunk"], model, inference_args=None
                      ) -> Iterable[PredictionResult]:
        return [PredictionResult(chunk, model.score_table(chunk.numbers, chunk.strings))
                for chunk in batch]

    def get_num_bytes(self, batch: Sequence["Chunk"]) -> int:
        return sum(len(c.data) for c in batch)  # the default pickles the batch

    def batch_elements_kwargs(self):
        return {"min_batch_size": 1, "max_batch_size": 1}  # a chunk is already a batch

    def get_metrics_namespace(self) -> str:
        return METRICS_NAMESPACE

    def __repr__(self):
        return f"SavedModelHandler({self._model_dir!r})"


class _WritePart(beam.DoFn):
    def __init__(self, parts_dir: str, feature_names: Sequence[str] = (), top_k: int = 0,
                 sep: str = ","):
        self._parts_dir = parts_dir
        self._feature_names, self._top_k, self._sep = list(feature_names), int(top_k), sep
        self._rows = Metrics.counter(METRICS_NAMESPACE, "rows")
        self._flagged = Metrics.counter(METRICS_NAMESPACE, "flagged")

    def process(self, result: PredictionResult):
        index, out, rows, flagged = format_chunk(result, self._feature_names, self._top_k,
                                                 self._sep)
        # The row count in the name: score.py's progress reads it from the listing.
        path = FileSystems.join(self._parts_dir, f"part-{index:08d}{PART_ROWS}{rows}")
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
                with open_file(path) as f:
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


def build_pipeline(p: beam.Pipeline, chunks: List[ChunkSpec], header: bytes, table: Table,
                   error_columns: Sequence[str], model_dir: str, parts_dir: str,
                   expected_rows: int, tmp_path: str, output_path: str, top_k: int = 0):
    """`table`: how to read the chunks (chunks.Table); `error_columns`: what top_features names."""
    parts = (p
             | "Chunks" >> beam.Create(chunks)
             | "Spread" >> beam.Reshuffle()
             | "Read" >> beam.Map(read_chunk, table)
             | "Score" >> RunInference(SavedModelHandler(model_dir))
             | "Write" >> beam.ParDo(_WritePart(parts_dir, error_columns, top_k,
                                                table.delimiter)))
    header = output_header(header, top_k, table.delimiter)
    return (parts
            | "Collect" >> beam.combiners.ToList()
            | "Concatenate" >> beam.Map(concatenate, header, len(chunks), expected_rows,
                                        tmp_path, output_path))


def counter(result, name: str) -> Optional[int]:
    try:
        found = result.metrics().query(
            MetricsFilter().with_namespace(METRICS_NAMESPACE).with_name(name))["counters"]
    except Exception:  # noqa: BLE001 - some runners do not report metrics
        return None
    if not found:
        return None
    values = [c.committed if c.committed is not None else c.attempted for c in found]
    return int(sum(v for v in values if v is not None))


def remove(path: str) -> None:
    try:
        if FileSystems.exists(path):
            FileSystems.delete([path])
    except Exception:  # noqa: BLE001 - best-effort cleanup
        logging.warning("could not remove %s", path)
