"""The run summary (the last line `run` prints), read back from ML Metadata.

Built from the run's artifacts through pipeline/lineage.py and the files the
components wrote (evaluation.json, training_summary.json, gate_report.json),
never from guesses about directory layout.
"""
import json
import logging
import os
from typing import Any, Dict, Optional

from components.columns import ColumnRoles
from components.data_gate import artifacts as gate_artifacts
from components.data_gate import reference_schema
from components.evaluator import artifacts as eval_artifacts
from components.evaluator import challengers as challengers_lib
from components.model import layout
from components.model.training_summary import epoch_cap_warning
from pipeline.lineage import RunRecord, prop


def _read_json(path: str) -> Optional[Dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return None


def summarize(rec: RunRecord, output_dir: str) -> Dict[str, Any]:
    """The summary's fields read from the run's artifacts (README: "The summary")."""
    evaluation = rec.outputs(eval_artifacts.NODE_ID).get("evaluation")
    evaluation_file = (os.path.join(evaluation.uri, eval_artifacts.EVALUATION_FILE)
                       if evaluation else None)
    report = _read_json(evaluation_file) if evaluation_file else None
    if report is None:
        raise RuntimeError("the evaluator wrote no evaluation.json")
    run_dir = rec.outputs("Trainer").get("model_run")
    training = (_read_json(os.path.join(run_dir.uri, layout.TRAINING_SUMMARY_FILE))
                if run_dir else None)
    pushed = rec.outputs("Pusher").get("pushed_model")
    pushed_dir = None
    # Only a Pusher that ran in this run pushed anything (a cached one names an
    # earlier run's version).
    if pushed is not None and prop(pushed, "pushed") == 1 and rec.ran("Pusher"):
        pushed_dir = prop(pushed, "pushed_destination")
    reasons = list(report["reasons"])
    if pushed is not None and not rec.ran("Pusher"):
        pushed = None  # its registry record is an earlier run's too
        if report["blessed"]:
            reasons.append("the Pusher's inputs are those of an earlier run (cached): "
                           "nothing new pushed")
    metrics = {k: report["metrics"][k] for k in eval_artifacts.SCALAR_METRICS
               if k in report["metrics"]}
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
        "reasons": reasons,
        "baseline": ({k: report["baseline"].get(k) for k in ("roc_auc", "false_alarm_rate",
                                                             "threshold", "model_uri")}
                     if report.get("baseline") else None),
        "components": rec.components(),
        # The evaluator's simple challengers on the same eval rows (evaluation.json has
        # their details): ROC-AUC each (None without labels), the best, the margin.
        "challengers": _challengers(report.get("challengers")),
        "run_id": rec.run.name,
        "evaluation": evaluation_file,
        "tensorboard_logdir": run_dir.uri if run_dir else None,
        "epochs_run": (training or {}).get("epochs_run"),
        "best_epoch": (training or {}).get("best_epoch"),
        # Things a person should look at although the run succeeded.
        "warnings": [w for w in (epoch_cap_warning(training),) if w],
        # Which model-selection candidate the Trainer kept, and why.
        "model_selection": _selection(training),
        "registry": registry_summary(pushed),
        "comparison": report.get("comparison"),
        "report": publish_report(report.get("report"), output_dir),
    }


def _challengers(ch: Optional[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    if not ch:
        return None
    out: Dict[str, Any] = {n: ch[n].get("roc_auc") for n in challengers_lib.names(ch)}
    out.update(best=ch.get("best"), autoencoder_roc_auc=ch.get("autoencoder_roc_auc"),
               margin_vs_best=ch.get("margin_vs_best"))
    return out


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
    dst = os.path.join(output_dir, eval_artifacts.REPORT_FILE)
    tmp = dst + f".tmp-{os.getpid()}"
    shutil.copyfile(evaluation_report, tmp)
    os.replace(tmp, dst)
    return dst


def registry_summary(pushed) -> Optional[Dict[str, Any]]:
    """{"uri", "name", "version", "champion", "manifest"[, "error"]} from the
    PushedModel artifact (set by components/registry/executor.py); version is
    null when nothing was pushed or registration failed (then "error" says why)."""
    if pushed is None or prop(pushed, "registry_uri") is None:
        return None
    out = {"uri": prop(pushed, "registry_uri"), "name": prop(pushed, "registry_name"),
           "version": prop(pushed, "registry_version"),
           "champion": prop(pushed, "registry_champion"),
           "manifest": prop(pushed, "registry_manifest")}
    error = prop(pushed, "registry_error")
    if error:
        out["error"] = error
    return out


def data_gate_summary(rec: RunRecord, output_dir: str, label_column: Optional[str],
                      pushed: bool, roles: Optional[ColumnRoles] = None,
                      max_missing_share: float = 0.0) -> Dict[str, Any]:
    """The summary's `data_gate` part; after the first push, writes the reference
    schema (components/data_gate/reference_schema.py) from this run's inferred
    schema. Never raises: the run itself succeeded."""
    if "://" in output_dir:
        return {}
    try:
        out: Dict[str, Any] = {}
        accepted = rec.outputs(gate_artifacts.NODE_ID).get(gate_artifacts.OUTPUT_KEY)
        report_path = (os.path.join(accepted.uri, gate_artifacts.REPORT_FILE)
                       if accepted else None)
        report = _read_json(report_path) if report_path else None
        if report:
            top = [{k: m.get(k) for k in ("feature", "measure", "value", "threshold")}
                   for m in sorted(report.get("drift_measurements") or [],
                                   key=lambda m: -(m.get("value") or 0))[:3]]
            out.update({"accepted": bool(report.get("accepted")),
                        "drift_checked": bool(report.get("drift_checked")),
                        "largest_drift": top, "report": report_path,
                        "reported": [f.get("feature", "") + ": " + f.get("text", "")
                                     for f in report.get("reported") or []]})
        path = reference_schema.schema_path(output_dir)
        created = False
        if pushed and not os.path.exists(path):
            schema_art = rec.outputs("SchemaGen").get("schema")
            if schema_art is not None:
                reference_schema.write_reference_schema(
                    output_dir, os.path.join(schema_art.uri, reference_schema.SCHEMA_FILE),
                    label_column, rec.run.name, roles, max_missing_share)
                created = True
        out["reference_schema"] = path if os.path.exists(path) else None
        out["reference_schema_created"] = created
        return out
    except Exception as e:  # noqa: BLE001 - report it in the summary, keep the exit status
        logging.warning("data gate summary / reference schema: %s", e, exc_info=True)
        return {"error": f"{type(e).__name__}: {e}"}
