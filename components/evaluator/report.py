"""A self-contained HTML report of one evaluation (report.html), written by the AnomalyEvaluator.

Everything a person needs to decide whether to trust the flag, in one file
with its images embedded (base64 PNG, matplotlib Agg, no external resource):

  summary     blessed or not and why, threshold, method, headline metrics
  training    training and validation loss per epoch (Trainer's training_summary.json),
              a warning when the best epoch is the epoch cap (the loss was still falling)
  selection   the model-selection candidates: settings, eval ROC-AUC, epochs, which was kept
  errors      reconstruction-error histogram on the eval split, normal vs anomalous
              rows when labels exist, with the threshold drawn
  curves      ROC and precision-recall curves, candidate and baseline (labels only)
  confusion   confusion matrix at the threshold (labels only)
  features    mean reconstruction error per feature
  baseline    candidate vs the last blessed model on the same eval rows, and the rule
  data        data statistics of the train and eval splits (StatisticsGen)

Inputs are plain Python/numpy values (`collect_*` helpers read the artifacts),
so the rendering is unit-tested without TFX.
"""
import html
import io
import json
import logging
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from components.evaluator import challengers as challengers_lib
from components.evaluator.artifacts import ERRORS_FILE, REPORT_FILE
from components.evaluator.plots import plot_curves, plot_features, plot_histogram, plot_loss
from components.model import layout
from components.model.settings import describe_candidate
from components.model.training_summary import at_epoch_cap, epoch_cap, epoch_cap_warning

MAX_SAVED_ERRORS = 20_000      # per class, in errors.npz
SECTIONS = ("summary", "training", "selection", "errors", "curves", "confusion", "features",
            "baseline", "data")


# ----------------------------------------------------------------------------- collecting
def downsample(values: np.ndarray, max_n: int = MAX_SAVED_ERRORS, seed: int = 0) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.size <= max_n:
        return values
    return np.random.default_rng(seed).choice(values, size=max_n, replace=False)


def save_errors(path: str, errors_by_group: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """Writes errors.npz (at most MAX_SAVED_ERRORS per group); returns what was written."""
    kept = {g: downsample(v).astype(np.float32) for g, v in errors_by_group.items()}
    import tensorflow as tf  # gfile: the artifact may live on a remote filesystem

    buf = io.BytesIO()
    np.savez_compressed(buf, **kept)
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(buf.getvalue())
    return kept


def curves(errors_by_group: Mapping[str, np.ndarray]) -> Optional[Dict[str, Any]]:
    """ROC and PR points from normal/anomaly errors; None without both classes."""
    from components.evaluator import metrics

    normal = np.asarray(errors_by_group.get("normal", []), dtype=np.float64)
    anomaly = np.asarray(errors_by_group.get("anomaly", []), dtype=np.float64)
    if not normal.size or not anomaly.size:
        return None
    errors = np.concatenate([normal, anomaly])
    labels = np.concatenate([np.zeros(normal.size, int), np.ones(anomaly.size, int)])
    return {"roc": metrics.roc_curve_points(errors, labels),
            "pr": metrics.pr_curve_points(errors, labels)}


def statistics_table(stats_list) -> Dict[str, Any]:
    """Rows of a DatasetFeatureStatisticsList (one split) as plain dicts."""
    if stats_list is None or not stats_list.datasets:
        return {"rows": 0, "features": []}
    ds = stats_list.datasets[0]
    out = []
    import re

    def natural(name):
        return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]

    for f in ds.features:
        name = ".".join(f.path.step) if f.path.step else f.name
        kind = f.WhichOneof("stats")
        row = {"name": name, "type": kind}
        if kind == "num_stats":
            s = f.num_stats
            row.update(present=int(s.common_stats.num_non_missing),
                       missing=int(s.common_stats.num_missing), mean=s.mean, std=s.std_dev,
                       min=s.min, median=s.median, max=s.max, zeros=int(s.num_zeros))
        out.append(row)
    out.sort(key=lambda r: natural(r["name"]))
    return {"rows": int(ds.num_examples), "features": out}


def read_statistics(statistics_uri: Optional[str], splits=("train", "eval")) -> Dict[str, Any]:
    """{split: statistics_table} from an ExampleStatistics artifact directory."""
    if not statistics_uri:
        return {}
    import tensorflow as tf
    from tensorflow_metadata.proto.v0 import statistics_pb2

    out = {}
    for split in splits:
        path = os.path.join(statistics_uri, f"Split-{split}", "FeatureStats.pb")
        if not tf.io.gfile.exists(path):
            continue
        msg = statistics_pb2.DatasetFeatureStatisticsList()
        with tf.io.gfile.GFile(path, "rb") as f:
            msg.ParseFromString(f.read())
        out[split] = statistics_table(msg)
    return out


def _activation_text(training: Mapping[str, Any]) -> str:
    chosen = training.get("output_activation") or "?"
    selection = training.get("selection") or {}
    if len(selection.get("candidates") or []) > 1 and selection.get("eval_rows"):
        return f"{chosen} (the candidate model selection kept, see below)"
    return chosen


def _chosen(thr: Mapping[str, Any]) -> str:
    """`auto`: which rule it chose and why."""
    details = thr.get("details") or {}
    if not details.get("chosen"):
        return ""
    return (f"<br>chose <code>{_e(details['chosen'])}</code>"
            + (f": {_e(details['why'])}" if details.get("why") else ""))


# ----------------------------------------------------------------------------- HTML
CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1100px;
color:#222;line-height:1.4}
h1{font-size:1.6em;margin-bottom:4px}h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;margin:8px 0;font-size:0.9em}td,th{border:1px solid #ccc;padding:3px 8px;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.ok{color:#0a7d22;font-weight:bold}.bad{color:#b00020;font-weight:bold}.muted{color:#666}
img{max-width:100%;border:1px solid #eee}code{background:#f5f5f5;padding:1px 4px}
.warn{background:#fff4e5;border-left:4px solid #e69500;padding:6px 10px}
"""


def _e(x) -> str:
    return html.escape(str(x))


def _fmt(v, digits=4) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        if not np.isfinite(v):
            return str(v)
        return f"{v:.{digits}g}" if abs(v) >= 1e4 or (v != 0 and abs(v) < 1e-3) else \
            f"{v:.{digits}f}"
    return _e(v)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    h = "".join(f"<th>{_e(c)}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{c if isinstance(c, _Raw) else _fmt(c)}</td>"
                                    for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


class _Raw(str):
    """Already-escaped HTML for a table cell."""


def _img(src: str, alt: str) -> str:
    return f'<img src="{src}" alt="{_e(alt)}">'


def _selection_section(training: Optional[Mapping[str, Any]]) -> str:
    """Model selection: one row per candidate the Trainer fitted, the kept one marked."""
    sel = (training or {}).get("selection") or {}
    cands = sel.get("candidates") or []
    out = ["<section id='selection'><h2>Model selection</h2>"]
    if len(cands) < 2:
        why = sel.get("why") or "no model selection recorded"
        out.append(f"<p class='muted'>One candidate trained: {_e(why)}.</p></section>")
        return "\n".join(out)
    chosen = sel.get("chosen", 0)
    rows = []
    for i, c in enumerate(cands):
        best, cap = c.get("best_epoch"), c.get("epochs")
        best_text = _fmt(best) + (" (the cap)" if at_epoch_cap(best, cap) else "")
        loss = c.get("best_val_loss", c.get("best_loss"))
        rows.append([f"{i + 1}", describe_candidate(c.get("overrides") or {}), c.get("roc_auc"),
                     c.get("epochs_run"), _Raw(best_text), loss,
                     None if c.get("seconds") is None else f"{c['seconds']:.1f}",
                     _Raw("<span class='ok'>kept</span>" if i == chosen else "")])
    n_eval = sel.get("eval_rows")
    out.append(f"<p>Every candidate was fitted on the same training rows and scored on "
               f"{_fmt(n_eval)} labelled eval rows ({_fmt(sel.get('eval_anomalies'))} "
               f"anomalies); the highest ROC-AUC is kept (ties: the earlier).</p>")
    out.append(_table(["", "candidate", "eval ROC-AUC", "epochs run", "best epoch",
                       "best validation loss", "fit seconds", ""], rows))
    out.append("</section>")
    return "\n".join(out)


def _challengers_section(ch: Optional[Mapping[str, Any]]) -> str:
    """The simple challengers scored on the same eval rows, beside the autoencoder."""
    out = ["<section id='challengers'><h2>Challengers</h2>"]
    if not ch:
        out.append("<p class='muted'>Not scored (challengers.enabled is false).</p></section>")
        return "\n".join(out)
    names = challengers_lib.names(ch)
    ae = ch.get("autoencoder_roc_auc")
    rows = [["autoencoder (this candidate)", ae, None, None, ""]]
    for n in names:
        e = ch[n]
        rows.append([n, e.get("roc_auc"), e.get("pr_auc"), e.get("seconds"),
                     e.get("error") or ""])
    sampled = [w for w, s in (("fit", ch.get("fit_sampled")), ("eval", ch.get("eval_sampled")))
               if s]
    out.append(f"<p>Fitted on {_fmt(ch.get('fit_rows'))} training rows (the normal ones when "
               f"labels exist), scored on {_fmt(ch.get('eval_rows'))} eval rows"
               + (f" (a seeded sample of the {' and '.join(sampled)} rows)" if sampled else "")
               + ": largest per-feature |z|, Mahalanobis distance, mean distance to the 5 "
                 "nearest training rows, IsolationForest.</p>")
    best, margin = ch.get("best"), ch.get("margin_vs_best")
    if ch.get("note"):
        out.append(f"<p class='muted'>{_e(ch['note'])}.</p>")
    elif best is not None and margin is not None:
        verdict = ("beats" if margin > 0 else "does not beat")
        out.append(f"<p class='{'ok' if margin > 0 else 'warn'}'>The autoencoder {verdict} "
                   f"the best challenger, <code>{_e(best)}</code>, by {margin:+.4f} ROC-AUC."
                   "</p>")
    out.append(_table(["", "eval ROC-AUC", "eval PR-AUC", "seconds", "error"], rows))
    out.append("</section>")
    return "\n".join(out)


def render(evaluation: Mapping[str, Any], training: Optional[Mapping[str, Any]],
           errors_by_group: Mapping[str, np.ndarray], statistics: Mapping[str, Any],
           feature_names: Sequence[str], curves_cand: Optional[Mapping[str, Any]] = None,
           curves_base: Optional[Mapping[str, Any]] = None, title: str = "") -> str:
    """The report as one HTML string (images inlined)."""
    m = evaluation.get("metrics") or {}
    thr = evaluation.get("threshold") or {}
    base = evaluation.get("baseline")
    labeled = bool(evaluation.get("labeled"))
    blessed = bool(evaluation.get("blessed"))
    parts: List[str] = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>"
                        f"{_e(title or 'Anomaly model report')}</title><style>{CSS}</style>"
                        "</head><body>"]
    parts.append(f"<h1>{_e(title or 'Anomaly model report')}</h1>"
                 f"<div class='muted'>candidate model (the Trainer's output) "
                 f"{_e(evaluation.get('model_uri', ''))}</div>")

    # summary
    verdict = ("<span class='ok'>BLESSED</span> (pushed by the Pusher)" if blessed else
               "<span class='bad'>NOT BLESSED</span> (not pushed)")
    params = ", ".join(f"{k}={v}" for k, v in (thr.get("params") or {}).items()) or "none"
    head_rows = [["verdict", _Raw(verdict)],
                 ["why", _Raw("<br>".join(_e(r) for r in evaluation.get("reasons") or []))],
                 ["threshold", thr.get("threshold")],
                 ["threshold method", _Raw(f"<code>{_e(thr.get('method'))}</code> ({_e(params)})"
                                           + _chosen(thr))],
                 ["fitted on", thr.get("fitted_on")],
                 ["eval rows", m.get("eval_rows")]]
    if labeled:
        head_rows += [[k, m.get(k)] for k in ("roc_auc", "pr_auc", "precision", "recall", "f1",
                                              "false_alarm_rate")]
    else:
        head_rows += [["flagged rate", m.get("flagged_rate")]]
    parts.append("<section id='summary'><h2>Summary</h2>"
                 + _table(["", "value"], head_rows) + "</section>")

    # training
    parts.append("<section id='training'><h2>Training</h2>")
    cap_warning = epoch_cap_warning(training)
    if cap_warning:
        parts.append(f"<p class='warn'><b>Warning:</b> {_e(cap_warning)}.</p>")
    if training and training.get("history"):
        hist = training["history"]
        parts.append(_img(plot_loss(hist, training.get("best_epoch")), "loss per epoch"))
        parts.append(_table(["", "value"], [
            ["layers (units after the input)", " → ".join(map(str, training.get("layer_sizes",
                                                                                [])))],
            ["training rows (normal)", training.get("train_rows")],
            ["validation rows", training.get("validation_rows")],
            ["output activation", _activation_text(training)],
            ["ensemble members", training.get("ensemble_size", 1)],
            ["errors normalised per feature",
             "yes" if training.get("feature_error_scale") else "no"],
            ["batch size", training.get("batch_size")],
            ["epochs run (cap)", _Raw(f"{_fmt(training.get('epochs_run'))} "
                                      f"({_fmt(epoch_cap(training))})")],
            ["best epoch", training.get("best_epoch")],
            ["final training loss", (hist.get("loss") or [None])[-1]],
            ["best validation loss", min(hist["val_loss"]) if hist.get("val_loss") else None]]))
    else:
        parts.append("<p class='muted'>No training history was recorded.</p>")
    parts.append("</section>")
    parts.append(_selection_section(training))
    parts.append(_challengers_section(evaluation.get("challengers")))

    # errors
    parts.append("<section id='errors'><h2>Reconstruction errors on the eval split</h2>")
    groups = {g: v for g, v in errors_by_group.items() if np.asarray(v).size}
    if groups and thr.get("threshold") is not None:
        parts.append(_img(plot_histogram(groups, float(thr["threshold"])), "error histogram"))
        stats = (m.get("error_stats") or {})
        parts.append(_table(["rows", "count", "mean", "std", "p50", "p95", "p99", "max"], [
            [g, s.get("count"), s.get("mean"), s.get("std"), s.get("p50"), s.get("p95"),
             s.get("p99"), s.get("max")] for g, s in stats.items()]))
    else:
        parts.append("<p class='muted'>No errors recorded (empty eval split).</p>")
    parts.append("</section>")

    # curves and confusion matrix
    parts.append("<section id='curves'><h2>ROC and precision-recall curves</h2>")
    if labeled and curves_cand:
        parts.append(_img(plot_curves(curves_cand, curves_base, m), "ROC and PR curves"))
        if curves_base:
            parts.append("<p class='muted'>Dashed: the baseline (last blessed model) on the "
                         "same eval rows.</p>")
    else:
        parts.append("<p class='muted'>Needs labels with both classes in the eval split.</p>")
    parts.append("</section><section id='confusion'><h2>Confusion matrix at the threshold</h2>")
    if labeled and "tp" in m:
        parts.append(_table(["", "flagged (error > threshold)", "not flagged"], [
            ["anomalous rows (label 1)", m["tp"], m["fn"]],
            ["normal rows (label 0)", m["fp"], m["tn"]]]))
        parts.append(f"<p>precision {_fmt(m.get('precision'))}, recall {_fmt(m.get('recall'))}, "
                     f"F1 {_fmt(m.get('f1'))}, false-alarm rate "
                     f"{_fmt(m.get('false_alarm_rate'))}</p>")
    else:
        parts.append("<p class='muted'>Needs labels.</p>")
    parts.append("</section>")

    # features
    parts.append("<section id='features'><h2>Reconstruction error per feature</h2>")
    fme = m.get("feature_mean_error") or []
    if fme and len(fme) == len(feature_names):
        parts.append(_img(plot_features(feature_names, fme), "error per feature"))
        total = float(np.sum(fme)) or 1.0
        order = np.argsort(-np.asarray(fme), kind="stable")
        parts.append(_table(["feature", "mean squared error", "share of the error"], [
            [feature_names[i], fme[i], fme[i] / total] for i in order]))
    else:
        parts.append("<p class='muted'>Not recorded.</p>")
    parts.append("</section>")

    # baseline
    parts.append("<section id='baseline'><h2>Comparison with the baseline (last blessed model)"
                 "</h2>")
    if base:
        keys = ["roc_auc", "pr_auc", "f1", "precision", "recall", "false_alarm_rate",
                "threshold"]
        rows = []
        for k in keys:
            c = thr.get("threshold") if k == "threshold" else m.get(k)
            b = base.get(k)
            delta = (c - b) if isinstance(c, (int, float)) and isinstance(b, (int, float)) else None
            rows.append([k, c, b, delta])
        parts.append(f"<p>Baseline {_e(base.get('model_uri', ''))}, scored on the same eval rows "
                     "at its own threshold (the one it was served with when recorded, else "
                     "fitted by the same rule).</p>")
        parts.append(_table(["metric", "candidate", "baseline", "candidate − baseline"], rows))
        comp = evaluation.get("comparison")
        if comp:
            verdict = {True: "<span class='ok'>passed</span>",
                       False: "<span class='bad'>failed</span>"}.get(comp.get("passed"),
                                                                     "<span class='bad'>not "
                                                                     "comparable</span>")
            parts.append(f"<p>Blessing rule ({verdict}): {_e(comp.get('text', ''))}</p>")
        elif evaluation.get("baseline_ignored"):
            parts.append("<p>The baseline was ignored (ignore_baseline=true).</p>")
    else:
        parts.append("<p>No baseline: this is the first model evaluated in this output (or the "
                     "baseline was ignored); blessing did not depend on a comparison.</p>")
    parts.append("</section>")

    # data
    parts.append("<section id='data'><h2>Data statistics (StatisticsGen)</h2>")
    if statistics:
        for split, table in statistics.items():
            parts.append(f"<h3>{_e(split)} split: {_fmt(table.get('rows'))} rows</h3>")
            parts.append(_table(
                ["column", "present", "missing", "mean", "std", "min", "median", "max", "zeros"],
                [[r["name"], r.get("present"), r.get("missing"), r.get("mean"), r.get("std"),
                  r.get("min"), r.get("median"), r.get("max"), r.get("zeros")]
                 for r in table.get("features", [])]))
    else:
        parts.append("<p class='muted'>No statistics were available.</p>")
    parts.append("</section></body></html>")
    return "\n".join(parts)


# ----------------------------------------------------------------------------- evaluator hook
def write_evaluation_report(evaluation_dir: str, evaluation: Dict[str, Any], summaries,
                            model_dir: str, statistics_uri: Optional[str],
                            feature_names: Sequence[str]) -> str:
    """Called by the AnomalyEvaluator: errors.npz, curves into `evaluation`, report.html.

    `summaries` maps "candidate" (and "baseline") to ModelSummary objects.
    Adds "curves" (ROC/PR points) to `evaluation` in place. Returns the path.
    """
    import tensorflow as tf

    def groups(summary):
        return {g: s.sample() for g, s in summary.groups.items() if s.count}

    cand_errors = groups(summaries["candidate"])
    saved = save_errors(os.path.join(evaluation_dir, ERRORS_FILE), cand_errors)
    c_cand = curves(cand_errors) if evaluation.get("labeled") else None
    c_base = (curves(groups(summaries["baseline"]))
              if evaluation.get("labeled") and "baseline" in summaries else None)
    if c_cand:
        evaluation["curves"] = {"candidate": c_cand, **({"baseline": c_base} if c_base else {})}
    training = None
    path = layout.asset_path(model_dir, layout.TRAINING_SUMMARY_FILE)
    if tf.io.gfile.exists(path):
        with tf.io.gfile.GFile(path) as f:
            training = json.loads(f.read())
    try:
        statistics = read_statistics(statistics_uri)
    except Exception:  # noqa: BLE001 - statistics are informative; say so in the report
        logging.exception("could not read the data statistics for the report")
        statistics = {}
    text = render(evaluation, training, saved, statistics, feature_names, c_cand, c_base,
                  title="Anomaly model evaluation")
    out = os.path.join(evaluation_dir, REPORT_FILE)
    with tf.io.gfile.GFile(out, "w") as f:
        f.write(text)
    return out
