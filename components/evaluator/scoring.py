"""One Beam pass over the eval split: reconstruction errors of every model.

Rows are scored in batches by each model's `score_stored_examples` signature
(loaded TF2-style in `DoFn.setup`, tensorflow/tfx#7782), and combined into
per-class `ErrorStats` (normal / anomaly / unlabeled) plus per-feature error
sums, so the split is never held in memory as one array.
"""
from typing import Dict, Iterable, List, Optional

import apache_beam as beam
import numpy as np

from components.evaluator.thresholds import ErrorStats

NORMAL, ANOMALY, UNLABELED = "normal", "anomaly", "unlabeled"
SIGNATURE = "score_stored_examples"


class ModelSummary:
    """What one model's errors on the eval rows look like, mergeable."""

    def __init__(self, n_features: int, max_samples: int, seed: int = 0):
        self.groups = {g: ErrorStats(max_samples=max_samples, seed=seed + i)
                       for i, g in enumerate((NORMAL, ANOMALY, UNLABELED))}
        self.feature_error_sum = np.zeros(n_features, dtype=np.float64)
        self.nonfinite = 0

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
        self.feature_error_sum += feature_errors.sum(axis=0, dtype=np.float64)

    def merge(self, other: "ModelSummary") -> "ModelSummary":
        for g, stats in other.groups.items():
            self.groups[g].merge(stats)
        self.feature_error_sum += other.feature_error_sum
        self.nonfinite += other.nonfinite
        return self

    @property
    def count(self) -> int:
        return sum(s.count for s in self.groups.values()) + self.nonfinite


class _ScoreBatch(beam.DoFn):
    def __init__(self, model_dirs: Dict[str, str], label_column: Optional[str],
                 label_spec):
        self._model_dirs = model_dirs
        self._label_column = label_column
        self._label_spec = label_spec

    def setup(self):
        import tensorflow as tf

        self._tf = tf
        self._loaded = {name: tf.saved_model.load(d) for name, d in self._model_dirs.items()}
        self._fns = {name: m.signatures[SIGNATURE] for name, m in self._loaded.items()}

    def process(self, batch: List[bytes]) -> Iterable[Dict]:
        tf = self._tf
        examples = tf.constant(batch, dtype=tf.string)
        labels = None
        if self._label_column:
            parsed = tf.io.parse_example(examples, {self._label_column: self._label_spec})
            labels = np.reshape(parsed[self._label_column].numpy(), [-1]).astype(np.int64)
        out = {"labels": labels}
        for name, fn in self._fns.items():
            res = fn(examples=examples)
            out[name] = (res["reconstruction_error"].numpy().astype(np.float64),
                         res["feature_errors"].numpy().astype(np.float64))
        yield out


class _Summarize(beam.CombineFn):
    def __init__(self, names: List[str], n_features: int, max_samples: int):
        self._names, self._d, self._max = names, n_features, max_samples

    def create_accumulator(self):
        return {n: ModelSummary(self._d, self._max) for n in self._names}

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
    """Serialized examples matching `file_pattern` -> one {model name: ModelSummary}."""

    def __init__(self, file_pattern: str, model_dirs: Dict[str, str], n_features: int,
                 label_column: Optional[str], label_spec, batch_size: int, max_samples: int):
        super().__init__()
        self._pattern, self._model_dirs = file_pattern, model_dirs
        self._d, self._label, self._label_spec = n_features, label_column, label_spec
        self._batch, self._max = batch_size, max_samples

    def expand(self, pipeline):
        return (pipeline
                | "Read" >> beam.io.ReadFromTFRecord(self._pattern)
                | "Batch" >> beam.BatchElements(min_batch_size=min(64, self._batch),
                                                max_batch_size=self._batch)
                | "Score" >> beam.ParDo(_ScoreBatch(self._model_dirs, self._label,
                                                    self._label_spec))
                | "Summarize" >> beam.CombineGlobally(
                    _Summarize(sorted(self._model_dirs), self._d, self._max)))
