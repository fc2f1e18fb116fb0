"""Simple challengers of the autoencoder, fitted on train rows, scored on eval rows.

TFX-free (numpy + scikit-learn). Numeric columns are z-scored with the train
mean/std of present values (empty cells -> the train mean, z=0); categorical
columns are one-hot on the train's values plus an "other" slot. A challenger
that fails records its error instead of failing the run.
"""
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from components.evaluator import metrics
from components.evaluator.settings import ChallengerSettings


# The train rows read for the challengers are at most this many times
# `max_fit_rows` (the first ones of the split, in file order); the seeded fit
# sample is drawn from them, so memory stays bounded on a large split.
FIT_POOL_FACTOR = 4


class Encoder:
    def __init__(self, numeric: Dict[str, np.ndarray], categorical: Dict[str, np.ndarray],
                 max_categories: int):
        self.stats = {}
        for k, v in numeric.items():
            v = np.asarray(v, np.float64)
            present = v[np.isfinite(v)]
            mean = float(present.mean()) if present.size else 0.0
            std = float(present.std()) if present.size else 1.0
            self.stats[k] = (mean, std if std > 0 else 1.0)
        self.vocab = {}
        for k, v in categorical.items():
            values, counts = np.unique(np.asarray(v, object).astype(str), return_counts=True)
            order = np.argsort(-counts, kind="stable")[:max_categories]
            self.vocab[k] = [values[i] for i in order]

    def z(self, numeric: Dict[str, np.ndarray]) -> np.ndarray:
        cols = []
        for k, (mean, std) in self.stats.items():
            v = np.asarray(numeric[k], np.float64)
            cols.append(np.where(np.isfinite(v), (v - mean) / std, 0.0))
        n = len(next(iter(numeric.values()))) if numeric else 0
        return np.stack(cols, 1) if cols else np.zeros((n, 0))

    def encode(self, numeric, categorical) -> np.ndarray:
        parts = [self.z(numeric)]
        for k, vocab in self.vocab.items():
            v = np.asarray(categorical[k], object).astype(str)
            index = {s: i for i, s in enumerate(vocab)}
            hot = np.zeros((len(v), len(vocab) + 1))
            hot[np.arange(len(v)), [index.get(s, len(vocab)) for s in v]] = 1.0
            parts.append(hot)
        return np.concatenate(parts, 1)


def _sample(n: int, cap: int, rng) -> Optional[np.ndarray]:
    return None if n <= cap else np.sort(rng.choice(n, cap, replace=False))


def score_challengers(train_numeric: Dict[str, np.ndarray],
                      train_categorical: Dict[str, np.ndarray],
                      eval_numeric: Dict[str, np.ndarray],
                      eval_categorical: Dict[str, np.ndarray],
                      eval_labels: Optional[np.ndarray], cfg: ChallengerSettings,
                      max_categories: int = 20) -> Dict[str, Any]:
    """{name: {roc_auc, pr_auc, seconds, score_stats[, error]}, "best": ...}."""
    rng = np.random.default_rng(cfg.seed)
    n_train = len(next(iter({**train_numeric, **train_categorical}.values())))
    n_eval = len(next(iter({**eval_numeric, **eval_categorical}.values())))
    fit_idx, eval_idx = _sample(n_train, cfg.max_fit_rows, rng), _sample(
        n_eval, cfg.max_eval_rows, rng)

    def take(d, idx):
        return {k: np.asarray(v)[idx] if idx is not None else np.asarray(v) for k, v in d.items()}

    tn, tc = take(train_numeric, fit_idx), take(train_categorical, fit_idx)
    en, ec = take(eval_numeric, eval_idx), take(eval_categorical, eval_idx)
    labels = None if eval_labels is None else np.asarray(eval_labels).astype(np.int64)
    if labels is not None and eval_idx is not None:
        labels = labels[eval_idx]
    enc = Encoder(tn, tc, max_categories)
    x_train, x_eval = enc.encode(tn, tc), enc.encode(en, ec)
    out: Dict[str, Any] = {"fit_rows": len(x_train), "eval_rows": len(x_eval),
                           "fit_sampled": fit_idx is not None,
                           "eval_sampled": eval_idx is not None}
    both = labels is not None and 0 < labels.sum() < len(labels)
    if not both:
        out["note"] = ("no ROC-AUC: the eval split has no labels with both classes; "
                       "only the score distribution is reported")
    for name in cfg.names:
        started = time.time()
        entry: Dict[str, Any] = {}
        try:
            scores = _SCORERS[name](x_train, x_eval, enc, en, cfg)
            entry["score_stats"] = {q: float(np.quantile(scores, p)) for q, p in
                                    (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))}
            if both:
                entry["roc_auc"] = metrics.roc_auc(scores, labels)
                entry["pr_auc"] = metrics.pr_auc(scores, labels)
        except Exception as e:  # noqa: BLE001 - a challenger must not fail the run
            entry["error"] = f"{type(e).__name__}: {e}"
        entry["seconds"] = round(time.time() - started, 3)
        out[name] = entry
    aucs = {n: out[n]["roc_auc"] for n in cfg.names if out[n].get("roc_auc") is not None}
    out["best"] = max(aucs, key=aucs.get) if aucs else None
    return out


def _max_abs_z(x_train, x_eval, enc, en, cfg):
    z = enc.z(en)
    if z.shape[1] == 0:
        raise ValueError("no numeric columns")
    return np.abs(z).max(1)


def _mahalanobis(x_train, x_eval, enc, en, cfg):
    mean = x_train.mean(0)
    cov = np.cov(x_train, rowvar=False).reshape(x_train.shape[1], x_train.shape[1])
    inv = np.linalg.inv(cov + cfg.mahalanobis_ridge * np.eye(len(cov)))
    d = x_eval - mean
    return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", d, inv, d), 0))


def _knn(x_train, x_eval, enc, en, cfg):
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=cfg.knn_k).fit(x_train)
    return nn.kneighbors(x_eval)[0].mean(1)


def _iforest(x_train, x_eval, enc, en, cfg):
    from sklearn.ensemble import IsolationForest

    return -IsolationForest(random_state=cfg.seed).fit(x_train).score_samples(x_eval)


_SCORERS = {"max_abs_z": _max_abs_z, "mahalanobis": _mahalanobis, "knn": _knn,
            "iforest": _iforest}


def margin_verdict(autoencoder_auc: Optional[float], challengers: Dict[str, Any],
                   margin: Optional[float]) -> Optional[str]:
    """A refusal reason when bless_margin is set and not met; None otherwise."""
    best = challengers.get("best")
    if margin is None or best is None or autoencoder_auc is None:
        return None
    b = challengers[best]["roc_auc"]
    if autoencoder_auc >= b + margin:
        return None
    return (f"ROC-AUC {autoencoder_auc:.4f} does not beat the best challenger {best} "
            f"({b:.4f}) by challengers.bless_margin {margin}")


__all__: Sequence[str] = ("score_challengers", "margin_verdict", "Encoder", "read_split", "names",
                          "compare")


def read_split(split_uri: str, numeric: Sequence[str], categorical: Sequence[str],
               label: Optional[str], max_rows: int, normal_only: bool = False):
    """(numeric {col: float array, NaN = empty}, categorical {col: object array}, labels or
    None) of at most `max_rows` rows of a split, in file order (ExampleGen's hash
    split: no order of the input file), one record batch in memory at a time.
    With `normal_only`, only rows with label 0 are kept."""
    from components import examples_io

    columns = list(numeric) + list(categorical) + ([label] if label else [])
    num = {c: [] for c in numeric}
    cat = {c: [] for c in categorical}
    labels, n = [], 0
    for batch in examples_io.iter_record_batches(split_uri, columns):
        keep = None
        if label:
            y = examples_io.column_values(batch, label).astype(np.int64)
            if normal_only:
                keep = y == 0
                y = y[keep]
            labels.append(y)
        for c in numeric:
            v = examples_io.values_or_missing(batch, c).astype(np.float64)
            num[c].append(v if keep is None else v[keep])
        for c in categorical:
            v = examples_io.values_or_missing(batch, c)
            cat[c].append(v if keep is None else v[keep])
        n += int(batch.num_rows if keep is None else keep.sum())
        if n >= max_rows:
            break

    def cut(parts):
        return np.concatenate(parts)[:max_rows] if parts else np.zeros(0)

    return ({c: cut(v) for c, v in num.items()}, {c: cut(v) for c, v in cat.items()},
            cut(labels) if label and not normal_only else None)


def names(challengers: Mapping[str, Any]) -> List[str]:
    """The challengers scored in a `score_challengers` result (its per-challenger entries)."""
    return [k for k, v in challengers.items() if isinstance(v, dict) and "seconds" in v]


def compare(challengers: Dict[str, Any], autoencoder_auc: Optional[float]) -> Dict[str, Any]:
    """`challengers` with the autoencoder's ROC-AUC beside the best one's and the margin."""
    out = dict(challengers, autoencoder_roc_auc=autoencoder_auc, margin_vs_best=None)
    best = out.get("best")
    if best is not None and autoencoder_auc is not None:
        out["margin_vs_best"] = round(float(autoencoder_auc) - float(out[best]["roc_auc"]), 6)
    return out
