"""score_csv: the whole `score` command's work (see the package docstring)."""
import logging
import os
import tempfile
import threading
import time
from typing import Any, Dict, List, Optional, Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from components import progress
from components.columns import ColumnRoles
from components.errors import InputError
from components.input_checks import check_csv, read_header, resolve_csv_files
from components.model import layout
from components.model.explain import DEFAULT_K
from pipeline.batch_scoring.beam_job import PART_ROWS, build_pipeline, counter, remove
from pipeline.batch_scoring.chunks import Table, plan_chunks
from pipeline.batch_scoring.model_source import resolve_model

from pipeline.batch_scoring.settings import (DEFAULT_ON_BAD_ROWS, DEFAULT_ROWS_PER_CHUNK,
                                             rejects_path)


def score_csv(model: str, input_csv: str, output_csv: str,
              batch_size: int = DEFAULT_ROWS_PER_CHUNK, registry_uri: Optional[str] = None,
              beam_args: Sequence[str] = (), top_features: Optional[int] = None,
              on_bad_rows: str = DEFAULT_ON_BAD_ROWS) -> Dict[str, Any]:
    """Scores `input_csv` (file or directory of CSVs) into `output_csv`; returns stats.

    `model`: a SavedModel directory, a serving_model/<name> directory (newest
    version), or `models:/<name>@<alias>` / `models:/<name>/<version>` looked up
    in `registry_uri` (default: $MLFLOW_TRACKING_URI). `batch_size`: rows per
    chunk (one Beam element, one model call), approximately. `top_features`:
    how many features the `top_features` column lists per row (default
    components.model.explain.DEFAULT_K; 0 leaves the column out).
    `on_bad_rows`: "fail" -- a row that cannot be scored is an error (InputError,
    nothing written); "skip" -- such rows go to `rejects_path(output_csv)` (their
    cells, `_source_line`, `_source_file` for a directory, `_problem`) and every
    other row is scored, in input order.
    """
    top_k = DEFAULT_K if top_features is None else int(top_features)
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="score-model-") as download_dir:
        model_dir, registry = resolve_model(model, registry_uri, download_dir)
        metadata = layout.read_metadata(model_dir)
        features: List[str] = list(metadata["features"])
        numbers, strings = layout.table_columns(metadata)
        roles = ColumnRoles.from_dict(metadata.get("roles"))
        meta_label = metadata.get("label_column")
        header = read_header(input_csv)
        label_present = meta_label if meta_label and meta_label in header else None
        out_abs = output_csv if "://" in output_csv else os.path.abspath(output_csv)
        if not ("://" in out_abs) and not os.path.isdir(os.path.dirname(out_abs)):
            raise InputError(path=output_csv, problem="output directory does not exist")
        if on_bad_rows == "skip" and "://" in out_abs:
            raise InputError(path=output_csv, problem="--on-bad-rows skip writes its rejects "
                                                      "beside a local --output")
        tmp = f"{out_abs}.tmp-{os.getpid()}"
        checked_dir = f"{tmp}.checked" if on_bad_rows == "skip" else None
        t0 = time.time()
        # Empty cells are scored (the model imputes them); unseen categories too.
        info = check_csv(input_csv, label_column=label_present, expected_features=features,
                         mode="score", roles=ColumnRoles(numeric=tuple(numbers),
                                                         passthrough=tuple(strings)),
                         missing="impute", optional_columns=roles.passthrough,
                         quarantine_dir=checked_dir, on_bad_rows=on_bad_rows)
        logging.info("input checked: %d rows in %.1f s", info.rows, time.time() - t0)
        files = list(info.clean_files) if info.quarantined_rows else resolve_csv_files(input_csv)
        scored_rows = info.rows - info.quarantined_rows
        header_line, chunks = plan_chunks(files, batch_size)
        parts_dir = f"{tmp}.parts"
        if "://" not in parts_dir:
            os.makedirs(parts_dir, exist_ok=True)
        try:
            options = PipelineOptions(list(beam_args))
            p = beam.Pipeline(options=options)
            build_pipeline(p, chunks, header_line,
                           Table(tuple(info.columns), tuple(numbers), tuple(strings),
                                 info.delimiter),
                           layout.error_columns(metadata), model_dir, parts_dir, scored_rows,
                           tmp, out_abs, top_k=top_k)
            t0 = time.time()
            watcher = RowsWatcher(parts_dir, scored_rows)
            watcher.start()
            try:
                result = p.run()
                result.wait_until_finish()
            finally:
                watcher.stop()
            logging.info("Beam pipeline: %d chunks scored and written in %.1f s", len(chunks),
                         time.time() - t0)
            rejects = _publish_rejects(info, output_csv) if on_bad_rows == "skip" else None
        finally:
            remove(parts_dir)
            remove(tmp)
            if checked_dir is not None:
                remove(checked_dir)
        flagged = counter(result, "flagged")
        thr = layout.read_threshold(model_dir)
        threshold = thr.get("threshold") if thr else None
        if threshold is None:
            from components.model.scorer import SavedModelScorer

            threshold = SavedModelScorer(model_dir).threshold
    seconds = time.time() - started
    stats: Dict[str, Any] = {
        "model": (registry["source"] if registry is not None and registry.get("downloaded_to")
                  else model_dir),
        "rows": scored_rows, "flagged": flagged, "output": output_csv,
        "threshold": float(threshold), "chunks": len(chunks),
        "seconds": round(seconds, 3),
        "rows_per_second": round(scored_rows / seconds, 1) if seconds else None,
    }
    if on_bad_rows == "skip":
        stats.update({"input_rows": info.rows, "rejected_rows": info.quarantined_rows,
                      "rejects": rejects,
                      "rejected_by_problem": dict(info.quarantined_by_problem)})
    if registry is not None:
        stats["registry"] = {"uri": registry["uri"], "name": registry["name"],
                             "version": registry["version"], "model_uri": model}
    progress.say("scored %s rows, %s flagged, into %s (%.1f s)", f"{info.rows:,}",
                 "?" if flagged is None else f"{flagged:,}", output_csv, seconds)
    return stats


def _publish_rejects(info, output_csv: str) -> Optional[str]:
    """Moves the rows the checks set aside to the rejects file (or removes a stale one
    when there are none); returns its path, or None."""
    target = rejects_path(os.path.abspath(output_csv))
    if not info.quarantined_rows:
        if os.path.exists(target):
            os.remove(target)
        return None
    os.replace(info.quarantine_file, target)
    return target


class RowsWatcher:
    """`score` progress: rows scored / total, read from the part files' names
    (beam_job.PART_ROWS) every `interval` s while the Beam pipeline runs, so it
    counts what any worker process wrote. Nothing for a remote parts directory."""

    TASK = "score"

    def __init__(self, parts_dir: str, total: int, interval: float = 0.5):
        self.parts_dir, self.total, self.interval = parts_dir, int(total), interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="score-progress", daemon=True)
        self.done = 0

    def rows_written(self) -> int:
        try:
            names = os.listdir(self.parts_dir)
        except OSError:
            return self.done
        rows = 0
        for name in names:
            _, sep, count = name.rpartition(PART_ROWS)
            if sep and count.isdigit():
                rows += int(count)
        return rows

    def _report(self, done: int) -> None:
        progress.step("scored %s/%s rows", f"{done:,}", f"{self.total:,}", task=self.TASK,
                      done=done, total=self.total, status=f"{done:,}/{self.total:,} rows",
                      label="score", sample=True)

    def _watch(self) -> None:
        self._report(0)
        while not self._stop.wait(self.interval):
            done = self.rows_written()
            if done != self.done:
                self.done = done
                self._report(done)

    def start(self) -> None:
        if "://" not in self.parts_dir:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
            done = self.rows_written()
            if done != self.done:
                self.done = done
                self._report(done)
        progress.step("", task=self.TASK, end=True)
