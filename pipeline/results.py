"""Reads what the last pipeline run did back from ML Metadata.

The summary JSON of `anomaly-pipeline run` is built from MLMD and the files
components wrote (evaluation.json, training_summary.json), never from
guesses about directory layout.
"""
import json
import os
from typing import Any, Dict, List, Optional

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

OUTPUT_EVENT = metadata_store_pb2.Event.OUTPUT
STATE = metadata_store_pb2.Execution


def _read_json(path: str) -> Optional[Dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None


class RunRecord:
    """The components of the newest pipeline run and their output artifacts."""

    def __init__(self, metadata_path: str, connection_config=None,
                 pipeline_name: Optional[str] = None):
        # connection_config: a MySQL ConnectionConfig (pipeline/metadata.py)
        # instead of the SQLite file at metadata_path; pipeline_name: only runs
        # of that pipeline (a shared store holds several).
        config = connection_config
        if config is None:
            config = metadata_store_pb2.ConnectionConfig()
            config.sqlite.filename_uri = metadata_path
            config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
        self.store = metadata_store.MetadataStore(config)
        runs = self.store.get_contexts_by_type("pipeline_run")
        if pipeline_name is not None:
            runs = [r for r in runs if pipeline_name in {
                p.name for p in self.store.get_parent_contexts_by_context(r.id)}]
        if not runs:
            raise RuntimeError(f"no pipeline run recorded in {metadata_path}")
        self.run = max(runs, key=lambda c: (c.create_time_since_epoch, c.id))
        run_execs = {e.id: e for e in self.store.get_executions_by_context(self.run.id)}
        self.executions: Dict[str, Any] = {}
        for node in self.store.get_contexts_by_type("node"):
            for e in self.store.get_executions_by_context(node.id):
                if e.id in run_execs:
                    self.executions[node.name.split(".")[-1]] = e

    def components(self) -> Dict[str, List[str]]:
        ran, cached = [], []
        for name, e in sorted(self.executions.items(), key=lambda kv: kv[1].id):
            if e.last_known_state == STATE.CACHED:
                cached.append(name)
            elif e.last_known_state == STATE.COMPLETE:
                ran.append(name)
        return {"ran": ran, "cached": cached}

    def outputs(self, node: str) -> Dict[str, Any]:
        """{output key: artifact} of a node's execution in this run."""
        e = self.executions.get(node)
        if e is None:
            return {}
        events = [ev for ev in self.store.get_events_by_execution_ids([e.id])
                  if ev.type in (OUTPUT_EVENT, metadata_store_pb2.Event.DECLARED_OUTPUT)]
        arts = {a.id: a for a in self.store.get_artifacts_by_id([ev.artifact_id for ev in events])}
        out = {}
        for ev in events:
            key = ev.path.steps[0].key if ev.path.steps else str(ev.artifact_id)
            out[key] = arts[ev.artifact_id]
        return out


def _prop(artifact, name):
    if name in artifact.custom_properties:
        v = artifact.custom_properties[name]
        return v.WhichOneof("value") and getattr(v, v.WhichOneof("value"))
    return None


def summarize(metadata_path: str, connection_config=None,
              pipeline_name: Optional[str] = None) -> Dict[str, Any]:
    rec = RunRecord(metadata_path, connection_config, pipeline_name)
    evaluation = rec.outputs("AnomalyEvaluator").get("evaluation")
    report = _read_json(os.path.join(evaluation.uri, "evaluation.json")) if evaluation else None
    if report is None:
        raise RuntimeError("the evaluator wrote no evaluation.json")
    run_dir = rec.outputs("Trainer").get("model_run")
    training = _read_json(os.path.join(run_dir.uri, "training_summary.json")) if run_dir else None
    pushed = rec.outputs("Pusher").get("pushed_model")
    pushed_dir = None
    if pushed is not None and _prop(pushed, "pushed") == 1:
        pushed_dir = _prop(pushed, "pushed_destination")
    metric_keys = ("precision", "recall", "f1", "roc_auc", "pr_auc", "accuracy",
                   "false_alarm_rate", "flagged_rate", "eval_rows", "n_anomalies")
    metrics = {k: report["metrics"][k] for k in metric_keys if k in report["metrics"]}
    return {
        "blessed": bool(report["blessed"]),
        "pushed_model": pushed_dir,
        "threshold": report["threshold"]["threshold"],
        "threshold_method": report["threshold"]["method"],
        # What `auto` chose (best_f1 or mean_std) and why; the method itself otherwise.
        "threshold_rule": ((report["threshold"].get("details") or {}).get("chosen")
                           or report["threshold"]["method"]),
        "train_rows": (training or {}).get("train_rows"),
        "metrics": metrics,
        "reasons": report["reasons"],
        "baseline": ({k: report["baseline"].get(k) for k in ("roc_auc", "false_alarm_rate",
                                                             "threshold", "model_uri")}
                     if report.get("baseline") else None),
        "components": rec.components(),
        "run_id": rec.run.name,
        "evaluation": os.path.join(evaluation.uri, "evaluation.json"),
        "tensorboard_logdir": run_dir.uri if run_dir else None,
        "epochs_run": (training or {}).get("epochs_run"),
        # Which model-selection candidate the Trainer kept, and why.
        "model_selection": _selection(training),
        "registry": registry_summary(pushed),
        "comparison": report.get("comparison"),
        "report": publish_report(report.get("report"), os.path.dirname(metadata_path)),
    }


def _selection(training: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    sel = (training or {}).get("selection")
    if not sel:
        return None
    chosen = sel["candidates"][sel["chosen"]] if sel.get("candidates") else {}
    return {"chosen": chosen.get("overrides", {}), "roc_auc": chosen.get("roc_auc"),
            "candidates": len(sel.get("candidates") or []), "why": sel.get("why")}


def publish_report(evaluation_report: Optional[str], output_dir: str) -> Optional[str]:
    """Copies the evaluator's report.html (an artifact of this run, possibly
    cached) to <output>/report.html and returns that path; None if there is none."""
    import shutil

    if not evaluation_report or not os.path.exists(evaluation_report):
        return None
    dst = os.path.join(output_dir, "report.html")
    tmp = dst + f".tmp-{os.getpid()}"
    shutil.copyfile(evaluation_report, tmp)
    os.replace(tmp, dst)
    return dst


def registry_summary(pushed) -> Optional[Dict[str, Any]]:
    """{"uri", "name", "version", "champion", "manifest"[, "error"]} from the
    PushedModel artifact (set by components/registry/executor.py); version is
    null when nothing was pushed or registration failed (then "error" says why)."""
    if pushed is None or _prop(pushed, "registry_uri") is None:
        return None
    out = {"uri": _prop(pushed, "registry_uri"), "name": _prop(pushed, "registry_name"),
           "version": _prop(pushed, "registry_version"),
           "champion": _prop(pushed, "registry_champion"),
           "manifest": _prop(pushed, "registry_manifest")}
    error = _prop(pushed, "registry_error")
    if error:
        out["error"] = error
    return out
