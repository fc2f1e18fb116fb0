"""AnomalyEvaluator executor: unpack artifacts, one Beam pass, write outputs."""
import json
import os
import pickle
import time
from typing import Any, Dict, List

import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils, path_utils

from components import features, signatures
from components.evaluator import decision

# The blessing contract of tfx/components/evaluator/executor.py (1.16).
BLESSED_KEY = "blessed"
CURRENT_MODEL_KEY = "current_model"
CURRENT_MODEL_ID_KEY = "current_model_id"
BASELINE_MODEL_KEY = "baseline_model"
BASELINE_MODEL_ID_KEY = "baseline_model_id"
BLESSED_FILE, NOT_BLESSED_FILE = "BLESSED", "NOT_BLESSED"
EVALUATION_FILE = "evaluation.json"
# Recorded on our blessings, read back when that model is the baseline.
EVAL_EXAMPLES_URI_KEY = "eval_examples_uri"
THRESHOLD_KEY = "threshold"
EVAL_SPLIT = "eval"


def write_blessing(blessing: types.Artifact, model: types.Artifact,
                   baseline: types.Artifact = None, blessed: bool = False) -> None:
    blessing.set_string_custom_property(CURRENT_MODEL_KEY, model.uri)
    blessing.set_int_custom_property(CURRENT_MODEL_ID_KEY, model.id)
    if baseline is not None:
        blessing.set_string_custom_property(BASELINE_MODEL_KEY, baseline.uri)
        blessing.set_int_custom_property(BASELINE_MODEL_ID_KEY, baseline.id)
    io_utils.write_string_file(
        os.path.join(blessing.uri, BLESSED_FILE if blessed else NOT_BLESSED_FILE), "")
    blessing.set_int_custom_property(BLESSED_KEY, 1 if blessed else 0)


class Executor(base_beam_executor.BaseBeamExecutor):

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        import tensorflow_transform as tft

        self._log_startup(input_dict, output_dict, exec_properties)
        started = time.time()
        cfg = json.loads(exec_properties.get("evaluator_config") or "{}")
        label = (cfg.get("data") or {}).get("label_column")
        thr_cfg = cfg.get("threshold") or {"method": "auto", "params": {}}
        ev_cfg = cfg.get("evaluation") or {}

        model = artifact_utils.get_single_instance(input_dict["model"])
        baselines = input_dict.get("baseline_model") or []
        baseline = baselines[0] if baselines else None
        if baseline is not None and baseline.id == model.id:
            baseline = None  # the candidate itself was resolved (re-evaluation)
        blessing = artifact_utils.get_single_instance(output_dict["blessing"])
        evaluation = artifact_utils.get_single_instance(output_dict["evaluation"])
        out_model = artifact_utils.get_single_instance(output_dict["thresholded_model"])

        tft_output = tft.TFTransformOutput(
            artifact_utils.get_single_uri(input_dict["transform_graph"]))
        raw_spec = tft_output.raw_feature_spec()
        feature_keys = features.feature_keys(raw_spec.keys(), label)
        labeled = bool(label) and label in raw_spec
        if label and not labeled:
            raise ValueError(f"label column '{label}' is not in the data's schema")
        examples_uri = artifact_utils.get_split_uri(input_dict["examples"], EVAL_SPLIT)
        model_dirs = {"candidate": path_utils.serving_model_path(model.uri)}
        if baseline is not None:
            model_dirs["baseline"] = path_utils.serving_model_path(baseline.uri)

        # The eval split the baseline was blessed on ("reference"): both models
        # are judged on it too, so a candidate trained and evaluated on new,
        # poisoned data cannot look better than it is.
        baseline_blessing = (input_dict.get("baseline_blessing") or [None])[0]
        reference_uri = None
        if baseline is not None and baseline_blessing is not None:
            reference_uri = _string_prop(baseline_blessing, EVAL_EXAMPLES_URI_KEY) or None
            if reference_uri == examples_uri or not (
                    reference_uri and tf.io.gfile.glob(os.path.join(reference_uri, "*"))):
                reference_uri = None
        eval_sets = {"current": examples_uri}
        if reference_uri:
            eval_sets["reference"] = reference_uri

        import apache_beam as beam

        from components.evaluator.scoring import SummarizeErrors

        result_path = os.path.join(evaluation.uri, "error_summary.pkl")
        with self._make_beam_pipeline() as p:
            summaries = {
                name: p | f"Score_{name}" >> SummarizeErrors(
                    uri, model_dirs, len(feature_keys), label if labeled else None,
                    feature_keys + ([label] if labeled else []),
                    batch_size=int(ev_cfg.get("batch_size", 1024)),
                    max_samples=int(ev_cfg.get("max_error_samples", 1_000_000)))
                for name, uri in eval_sets.items()}
            _ = ([pc | f"Key_{name}" >> beam.Map(lambda s, n=name: (n, s))
                  for name, pc in summaries.items()]
                 | "Flatten" >> beam.Flatten()
                 | "ToDict" >> beam.combiners.ToDict()
                 | "Write" >> beam.Map(_write_pickle, result_path))
        with tf.io.gfile.GFile(result_path, "rb") as f:
            summaries = pickle.load(f)
        current = summaries["current"]

        method, params = thr_cfg["method"], thr_cfg.get("params") or {}
        thr = decision.fit_threshold(current["candidate"], labeled, method, params)
        cand = decision.model_metrics(current["candidate"], labeled, thr.value)
        base = None
        if baseline is not None:
            # The baseline is judged at the threshold it was served with, when known.
            b_value = _float_prop(baseline_blessing, THRESHOLD_KEY) if baseline_blessing else None
            if b_value is None:
                b_value = decision.fit_threshold(current["baseline"], labeled, method,
                                                 params).value
            base = decision.model_metrics(current["baseline"], labeled, b_value)
            base["threshold"] = b_value
            base["model_uri"] = baseline.uri
            if "reference" in summaries:
                ref = summaries["reference"]
                cand["reference"] = decision.model_metrics(ref["candidate"], labeled, thr.value)
                base["reference"] = decision.model_metrics(ref["baseline"], labeled, b_value)
                cand["reference"]["examples_uri"] = reference_uri
        blessed, reasons = decision.decide(
            cand, base, labeled, ev_cfg.get("min_roc_auc"),
            float(ev_cfg.get("baseline_tolerance", 0.01)), bool(ev_cfg.get("ignore_baseline")))

        threshold_info = {
            "threshold": thr.value,
            "method": thr.method,
            "params": thr.params,
            "details": thr.details,
            "fitted_on": decision.fitted_on(thr, labeled),
            "error_stats": cand["error_stats"],
            "features": feature_keys,
            "label_column": label,
        }
        report = {
            "blessed": blessed,
            "reasons": reasons,
            "threshold": threshold_info,
            "metrics": cand,
            "baseline": base,
            "model_uri": model.uri,
            "labeled": labeled,
            "seconds": round(time.time() - started, 3),
        }
        report["comparison"] = None if ev_cfg.get("ignore_baseline") else \
            decision.compare_with_baseline(cand, base, labeled,
                                           float(ev_cfg.get("baseline_tolerance", 0.01)))
        report["baseline_ignored"] = bool(ev_cfg.get("ignore_baseline")) and base is not None
        report["report"] = _write_report(evaluation.uri, report, current, model_dirs["candidate"],
                                         input_dict.get("statistics"), feature_keys)
        signatures.write_json(os.path.join(evaluation.uri, EVALUATION_FILE), report)
        signatures.write_json(os.path.join(evaluation.uri, signatures.THRESHOLD_FILE),
                              threshold_info)
        signatures.write_thresholded_model(
            model_dirs["candidate"], path_utils.serving_model_path(out_model.uri),
            thr.value, threshold_info)
        write_blessing(blessing, model, baseline, blessed)
        blessing.set_string_custom_property(EVAL_EXAMPLES_URI_KEY, examples_uri)
        blessing.set_float_custom_property(THRESHOLD_KEY, float(thr.value))
        if cand.get("roc_auc") is not None:
            blessing.set_float_custom_property("roc_auc", float(cand["roc_auc"]))
        for key, value in (("threshold", thr.value), ("roc_auc", cand.get("roc_auc"))):
            if value is not None:
                evaluation.set_float_custom_property(key, float(value))
        evaluation.set_string_custom_property("threshold_method", thr.method)
        evaluation.set_int_custom_property("blessed", int(blessed))


def _string_prop(artifact: types.Artifact, key: str):
    if key in artifact.mlmd_artifact.custom_properties:
        return artifact.get_string_custom_property(key)
    return None


def _float_prop(artifact: types.Artifact, key: str):
    if key in artifact.mlmd_artifact.custom_properties:
        return float(artifact.get_float_custom_property(key))
    return None


def _write_report(evaluation_dir, report, summaries, model_dir, statistics, feature_keys):
    """report.html + errors.npz (components/report.py); a failure is logged, not fatal."""
    import logging

    from components import report as report_lib

    stats_uri = statistics[0].uri if statistics else None
    try:
        return report_lib.write_evaluation_report(evaluation_dir, report, summaries, model_dir,
                                                  stats_uri, feature_keys)
    except Exception as e:  # noqa: BLE001 - the blessing must not depend on a plot
        logging.exception("could not write report.html")
        report["report_error"] = f"{type(e).__name__}: {e}"
        return None


def _write_pickle(obj, path: str) -> None:
    with tf.io.gfile.GFile(path, "wb") as f:
        pickle.dump(obj, f)
