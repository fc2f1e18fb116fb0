"""AnomalyEvaluator executor: unpack artifacts, one Beam pass, write outputs."""
import json
import os
import pickle
import time
from typing import Any, Dict, List

import tensorflow as tf
from tfx import types
from tfx.components.util import model_utils  # noqa: F401  (documents who reads the blessing)
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
        thr_cfg = cfg.get("threshold") or {"method": "mean_std", "params": {}}
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

        result_path = os.path.join(evaluation.uri, "error_summary.pkl")
        import apache_beam as beam

        with self._make_beam_pipeline() as p:
            _ = (decision_summaries(p, os.path.join(examples_uri, "*"), model_dirs,
                                    len(feature_keys), label if labeled else None,
                                    raw_spec.get(label), ev_cfg)
                 | "Write" >> beam.Map(_write_pickle, result_path))
        with tf.io.gfile.GFile(result_path, "rb") as f:
            summaries = pickle.load(f)

        thr = decision.fit_threshold(summaries["candidate"], labeled, thr_cfg["method"],
                                     thr_cfg.get("params") or {})
        cand = decision.model_metrics(summaries["candidate"], labeled, thr.value)
        base = None
        if baseline is not None:
            b_thr = decision.fit_threshold(summaries["baseline"], labeled, thr_cfg["method"],
                                           thr_cfg.get("params") or {})
            base = decision.model_metrics(summaries["baseline"], labeled, b_thr.value)
            base["threshold"] = b_thr.value
            base["model_uri"] = baseline.uri
        blessed, reasons = decision.decide(
            cand, base, labeled, ev_cfg.get("min_roc_auc"),
            float(ev_cfg.get("baseline_tolerance", 0.01)), bool(ev_cfg.get("ignore_baseline")))

        threshold_info = {
            "threshold": thr.value,
            "method": thr.method,
            "params": thr.params,
            "details": thr.details,
            "fitted_on": ("eval split, all rows" if (not labeled or thr.method in
                                                     decision.USES_ALL_ROWS)
                          else "eval split, normal rows (label 0)"),
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
        signatures.write_json(os.path.join(evaluation.uri, EVALUATION_FILE), report)
        signatures.write_json(os.path.join(evaluation.uri, signatures.THRESHOLD_FILE),
                              threshold_info)
        signatures.write_thresholded_model(
            model_dirs["candidate"], path_utils.serving_model_path(out_model.uri),
            thr.value, threshold_info)
        write_blessing(blessing, model, baseline, blessed)
        for key, value in (("threshold", thr.value), ("roc_auc", cand.get("roc_auc"))):
            if value is not None:
                evaluation.set_float_custom_property(key, float(value))
        evaluation.set_string_custom_property("threshold_method", thr.method)
        evaluation.set_int_custom_property("blessed", int(blessed))


def decision_summaries(p, pattern, model_dirs, n_features, label, label_spec, ev_cfg):
    from components.evaluator import scoring

    return scoring.summarize_errors(
        p, pattern, model_dirs, n_features, label, label_spec,
        batch_size=int(ev_cfg.get("batch_size", 1024)),
        max_samples=int(ev_cfg.get("max_error_samples", 1_000_000)))


def _write_pickle(obj, path: str) -> None:
    with tf.io.gfile.GFile(path, "wb") as f:
        pickle.dump(obj, f)
