"""One pass over the eval split: reconstruction errors of every model.

The split is read as Arrow record batches (components/examples_io.py:
Parquet or TFRecords), each batch is scored by each model's `score_table`
signature (components/model/scorer.py, loaded TF2-style in `DoFn.setup`,
tensorflow/tfx#7782), and the errors are combined into
per-class `ErrorStats` (normal / anomaly / unlabeled) plus per-feature error
sums, so the split is never held in memory as one array. `SummarizeErrors` is
the Beam pipeline's; `summarize_in_process` runs the same DoFn and CombineFn
over the same batches in this process, for when Beam would run here anyway
(components/beam_local.py).
"""
from typing import Dict, Iterable, List, Optional

import apache_beam as beam
import numpy as np

from components.evaluator.error_stats import ErrorStats

NORMAL, ANOMALY, UNLABELED = "normal", "anomaly", "unlabeled"


class ModelSummary:
    """What one model's errors on the eval rows look like, mergeable."""

    def __init__(self, max_samples: int, seed: int = 0):
        self.groups = {g: ErrorStats(max_samples=max_samples, seed=seed + i)
                       for i, g in enumerate((NORMAL, ANOMALY, UNLABELED))}
        # Per error column (sized by the first batch: the model's error columns).
        self.feature_error_sum: Optional[np.ndarray] = None
        self.nonfinite = 0

    def _add_feature_errors(self, sums: Optional[np.ndarray]) -> None:
        if sums is None:
            return
        self.feature_error_sum = (sums.copy() if self.feature_error_sum is None
                                  else self.feature_error_sum + sums)

    def add(self, errors: np.ndarray, feature_errors: np.ndarray,
            labels: Optional[np.ndarray]) -> None:
        finite = np.isfinite(errors)
        self.nonfinite += int((~finite).sum())
        errors, feature_errors = errors[finite], feature_errors[finite]
        if labels is None:
            self.groups[UNLABELED].add(errors)
        else:
            labels = labels[finite]
            self.groups[NORMAL].add(errors[labels == 0])
            self.groups[ANOMALY].add(errors[labels != 0])
        self._add_feature_errors(feature_errors.sum(axis=0, dtype=np.float64))

    def merge(self, other: "ModelSummary") -> "ModelSummary":
        for g, stats in other.groups.items():
            self.groups[g].merge(stats)
        self._add_feature_errors(other.feature_error_sum)
        self.nonfinite += other.nonfinite
        return self

    @property
    def count(self) -> int:
        return sum(s.count for s in self.groups.values()) + self.nonfinite


class _ScoreBatch(beam.DoFn):
    def __init__(self, model_dirs: Dict[str, str], label_column: Optional[str]):
        self._model_dirs = model_dirs
        self._label_column = label_column

    def setup(self):
        from components.model.scorer import SavedModelScorer

        self._scorers = {name: SavedModelScorer(d) for name, d in self._model_dirs.items()}

    def process(self, batch) -> Iterable[Dict]:
        from components import examples_io

        labels = None
        if self._label_column:
            labels = examples_io.column_values(batch, self._label_column).astype(np.int64)
        out = {"labels": labels}
        columns: Dict[str, np.ndarray] = {}
        for name, scorer in self._scorers.items():
            for key in scorer.features:
                if key not in columns:
                    columns[key] = examples_io.values_or_missing(batch, key)
            res = scorer.score_table(*scorer.table_from_columns(columns, batch.num_rows))
            out[name] = (res["reconstruction_error"].astype(np.float64),
                         res["feature_errors"].astype(np.float64))
        yield out


class _Summarize(beam.CombineFn):
    def __init__(self, names: List[str], max_samples: int):
        self._names, self._max = names, max_samples

    def create_accumulator(self):
        return {n: ModelSummary(self._max) for n in self._names}

    def add_input(self, acc, batch):
        for n in self._names:
            errors, feature_errors = batch[n]
            acc[n].add(errors, feature_errors, batch["labels"])
        return acc

    def merge_accumulators(self, accs):
        accs = iter(accs)
        first = next(accs)
        for acc in accs:
            for n in self._names:
                first[n].merge(acc[n])
        return first

    def extract_output(self, acc):
        return acc


class SummarizeErrors(beam.PTransform):
    """The examples of split folder `split_uri` -> one {model name: ModelSummary}."""

    def __init__(self, split_uri: str, model_dirs: Dict[str, str],
                 label_column: Optional[str], columns: List[str], batch_size: int,
                 max_samples: int):
        super().__init__()
        self._split_uri, self._model_dirs = split_uri, model_dirs
        self._label, self._columns = label_column, list(columns)
        self._batch, self._max = batch_size, max_samples

    def expand(self, pipeline):
        from components import examples_io

        return (pipeline
                | "Read" >> examples_io.ReadRecordBatches(self._split_uri, self._columns,
                                                          self._batch)
                | "Score" >> beam.ParDo(_ScoreBatch(self._model_dirs, self._label))
                | "Summarize" >> beam.CombineGlobally(
                    _Summarize(sorted(self._model_dirs), self._max)))


def summarize_in_process(eval_sets: Dict[str, str], model_dirs: Dict[str, str],
                         label_column: Optional[str], columns: List[str], batch_size: int,
                         max_samples: int) -> Dict[str, Dict[str, ModelSummary]]:
    """{eval set: {model name: ModelSummary}}: what `SummarizeErrors` computes for each
    eval set, without Beam (the models loaded once for every set)."""
    from components import examples_io

    score = _ScoreBatch(model_dirs, label_column)
    score.setup()
    summarize = _Summarize(sorted(model_dirs), max_samples)
    out = {}
    for name, uri in eval_sets.items():
        acc = summarize.create_accumulator()
        for batch in examples_io.iter_record_batches(uri, list(columns), batch_size):
            for scored in score.process(batch):
                acc = summarize.add_input(acc, scored)
        out[name] = summarize.extract_output(acc)
    return out
