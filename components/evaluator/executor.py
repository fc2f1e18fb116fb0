"""AnomalyEvaluator executor: unpack artifacts, one Beam pass, write the outputs.

The judgement itself (threshold, metrics, baseline rule) is TFX-free in
`decision.evaluate`; the Beam error pass is `error_pass.py`; report.html is
`report.py`. This module only reads and writes artifacts.
"""
import json
import logging
import os
import pickle
import time
from typing import Any, Dict, List, Optional

import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_beam_executor
from tfx.types import artifact_utils
from tfx.utils import io_utils, path_utils

from components import settings
from components.columns import ColumnRoles
from components.evaluator import decision
from components.evaluator.artifacts import ERROR_SUMMARY_FILE, EVALUATION_FILE
from components.evaluator.settings import (ChallengerSettings, EvaluationSettings,
                                           ThresholdSettings)
from components.model import export, layout

# The blessing contract of tfx/components/evaluator/executor.py (1.16).
BLESSED_KEY = "blessed"
CURRENT_MODEL_KEY = "current_model"
CURRENT_MODEL_ID_KEY = "current_model_id"
BASELINE_MODEL_KEY = "baseline_model"
BASELINE_MODEL_ID_KEY = "baseline_model_id"
BLESSED_FILE, NOT_BLESSED_FILE = "BLESSED", "NOT_BLESSED"
# Recorded on our blessings, read back when that model is the baseline.
EVAL_EXAMPLES_URI_KEY = "eval_examples_uri"
THRESHOLD_KEY = "threshold"
EVAL_SPLIT, TRAIN_SPLIT = "eval", "train"


def write_blessing(blessing: types.Artifact, model: types.Artifact,
                   baseline: Optional[types.Artifact] = None, blessed: bool = False) -> None:
    blessing.set_string_custom_property(CURRENT_MODEL_KEY, model.uri)
    blessing.set_int_custom_property(CURRENT_MODEL_ID_KEY, model.id)
    if baseline is not None:
        blessing.set_string_custom_property(BASELINE_MODEL_KEY, baseline.uri)
        blessing.set_int_custom_property(BASELINE_MODEL_ID_KEY, baseline.id)
    io_utils.write_string_file(
        os.path.join(blessing.uri, BLESSED_FILE if blessed else NOT_BLESSED_FILE), "")
    blessing.set_int_custom_property(BLESSED_KEY, 1 if blessed else 0)


def parse_challengers(text: Optional[str]) -> ChallengerSettings:
    """The `challengers` section of `evaluator_config` (its defaults when absent)."""
    return settings.from_dict(ChallengerSettings, json.loads(text or "{}").get("challengers")
                              or {})


def parse_config(text: Optional[str]):
    """(ColumnRoles, ThresholdSettings, EvaluationSettings) from `evaluator_config`; what is
    not given takes the settings' own defaults."""
    cfg = json.loads(text or "{}")
    return (ColumnRoles.from_dict(cfg.get("columns")),
            settings.from_dict(ThresholdSettings, cfg.get("threshold") or {}),
            settings.from_dict(EvaluationSettings, cfg.get("evaluation") or {}))


def _optional(input_dict: Dict[str, List[types.Artifact]], key: str
              ) -> Optional[types.Artifact]:
    found = input_dict.get(key) or []
    return found[0] if found else None


class Executor(base_beam_executor.BaseBeamExecutor):

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        import tensorflow_transform as tft

        self._log_startup(input_dict, output_dict, exec_properties)
        started = time.time()
        roles, thr_settings, ev_settings = parse_config(exec_properties.get("evaluator_config"))

        model = artifact_utils.get_single_instance(input_dict["model"])
        baseline = _optional(input_dict, "baseline_model")
        if baseline is not None and baseline.id == model.id:
            baseline = None  # the candidate itself was resolved (re-evaluation)
        baseline_blessing = _optional(input_dict, "baseline_blessing")
        blessing = artifact_utils.get_single_instance(output_dict["blessing"])
        evaluation = artifact_utils.get_single_instance(output_dict["evaluation"])
        out_model = artifact_utils.get_single_instance(output_dict["thresholded_model"])

        tft_output = tft.TFTransformOutput(
            artifact_utils.get_single_uri(input_dict["transform_graph"]))
        raw_spec = tft_output.raw_feature_spec()
        label = roles.label
        labeled = bool(label) and label in raw_spec
        if label and not labeled:
            raise ValueError(f"label column '{label}' is not in the data's schema")
        examples_uri = artifact_utils.get_split_uri(input_dict["examples"], EVAL_SPLIT)
        model_dirs = {"candidate": path_utils.serving_model_path(model.uri)}
        if baseline is not None:
            model_dirs["baseline"] = path_utils.serving_model_path(baseline.uri)
        candidate_metadata = layout.read_metadata(model_dirs["candidate"])
        feature_keys = list(candidate_metadata["features"])
        error_columns = layout.error_columns(candidate_metadata)
        read = list(dict.fromkeys(feature_keys + [c for d in model_dirs.values()
                                                  for c in layout.model_features(d)]))

        # The eval split the baseline was blessed on ("reference"): both models
        # are judged on it too, so a candidate trained and evaluated on new,
        # poisoned data cannot look better than it is.
        reference_uri = None
        if baseline is not None and baseline_blessing is not None:
            reference_uri = _string_prop(baseline_blessing, EVAL_EXAMPLES_URI_KEY) or None
            if reference_uri == examples_uri or not (
                    reference_uri and tf.io.gfile.glob(os.path.join(reference_uri, "*"))):
                reference_uri = None
        eval_sets = {"current": examples_uri}
        if reference_uri:
            eval_sets["reference"] = reference_uri

        summaries = self._error_pass(eval_sets, model_dirs, read,
                                     label if labeled else None, ev_settings,
                                     os.path.join(evaluation.uri, ERROR_SUMMARY_FILE))
        report = decision.evaluate(
            summaries, labeled, thr_settings, ev_settings, feature_keys, label,
            baseline_threshold=(_float_prop(baseline_blessing, THRESHOLD_KEY)
                                if baseline is not None and baseline_blessing else None),
            baseline_uri=baseline.uri if baseline is not None else None,
            reference_uri=reference_uri, started=started)
        report["model_uri"] = model.uri
        ch_settings = parse_challengers(exec_properties.get("evaluator_config"))
        if ch_settings.enabled:
            self._challengers(input_dict["examples"], roles, label if labeled else None,
                              ch_settings, report)
        report["report"] = _write_report(evaluation.uri, report, summaries["current"],
                                         model_dirs["candidate"], input_dict.get("statistics"),
                                         error_columns)
        threshold_info, blessed = report["threshold"], report["blessed"]
        value = threshold_info["threshold"]
        layout.write_json(os.path.join(evaluation.uri, EVALUATION_FILE), report)
        layout.write_json(os.path.join(evaluation.uri, layout.THRESHOLD_FILE), threshold_info)
        export.write_thresholded_model(
            model_dirs["candidate"], path_utils.serving_model_path(out_model.uri), value,
            threshold_info)
        write_blessing(blessing, model, baseline, blessed)
        blessing.set_string_custom_property(EVAL_EXAMPLES_URI_KEY, examples_uri)
        blessing.set_float_custom_property(THRESHOLD_KEY, float(value))
        roc_auc = report["metrics"].get("roc_auc")
        if roc_auc is not None:
            blessing.set_float_custom_property("roc_auc", float(roc_auc))
            evaluation.set_float_custom_property("roc_auc", float(roc_auc))
        evaluation.set_float_custom_property("threshold", float(value))
        evaluation.set_string_custom_property("threshold_method", threshold_info["method"])
        evaluation.set_int_custom_property("blessed", int(blessed))

    def _challengers(self, examples, roles: ColumnRoles, label: Optional[str],
                     cfg: ChallengerSettings, report: Dict[str, Any]) -> None:
        """Scores the simple challengers on the eval rows (fitted on the train rows the
        autoencoder learnt from) into report["challengers"]; with `bless_margin` a
        candidate that does not beat the best one by it is not blessed."""
        from components.evaluator import challengers

        t0 = time.time()
        numeric, categorical = list(roles.numeric), list(roles.categorical)
        train = challengers.read_split(artifact_utils.get_split_uri(examples, TRAIN_SPLIT),
                                       numeric, categorical, label,
                                       cfg.max_fit_rows * challengers.FIT_POOL_FACTOR,
                                       normal_only=bool(label))
        ev = challengers.read_split(artifact_utils.get_split_uri(examples, EVAL_SPLIT),
                                    numeric, categorical, label, cfg.max_eval_rows)
        out = challengers.score_challengers(train[0], train[1], ev[0], ev[1], ev[2], cfg)
        out = challengers.compare(out, report["metrics"].get("roc_auc"))
        out["seconds"] = round(time.time() - t0, 2)
        report["challengers"] = out
        refusal = challengers.margin_verdict(out["autoencoder_roc_auc"], out, cfg.bless_margin)
        if refusal:
            report["blessed"] = False
            report["reasons"].append(refusal)
        logging.info("challengers: %s", {n: out[n].get("roc_auc") for n in cfg.names})

    def _error_pass(self, eval_sets: Dict[str, str], model_dirs: Dict[str, str],
                    feature_keys: List[str], label: Optional[str],
                    ev_settings: EvaluationSettings, result_path: str) -> Dict[str, Any]:
        """{eval set: {model name: ModelSummary}} from one Beam pipeline, or the same pass
        in this process when the pipeline would run here anyway."""
        from components import beam_local
        from components.evaluator import error_pass

        columns = feature_keys + ([label] if label else [])
        if beam_local.runs_in_this_process(self._beam_pipeline_args):
            summaries = error_pass.summarize_in_process(
                eval_sets, model_dirs, label, columns, batch_size=ev_settings.batch_size,
                max_samples=ev_settings.max_error_samples)
            _write_pickle(summaries, result_path)
            return summaries
        import apache_beam as beam

        SummarizeErrors = error_pass.SummarizeErrors

        with self._make_beam_pipeline() as p:
            summaries = {
                name: p | f"Score_{name}" >> SummarizeErrors(
                    uri, model_dirs, label, columns, batch_size=ev_settings.batch_size,
                    max_samples=ev_settings.max_error_samples)
                for name, uri in eval_sets.items()}
            _ = ([pc | f"Key_{name}" >> beam.Map(lambda s, n=name: (n, s))
                  for name, pc in summaries.items()]
                 | "Flatten" >> beam.Flatten()
                 | "ToDict" >> beam.combiners.ToDict()
                 | "Write" >> beam.Map(_write_pickle, result_path))
        with tf.io.gfile.GFile(result_path, "rb") as f:
            return pickle.load(f)


def _string_prop(artifact: types.Artifact, key: str):
    if key in artifact.mlmd_artifact.custom_properties:
        return artifact.get_string_custom_property(key)
    return None


def _float_prop(artifact: types.Artifact, key: str):
    if key in artifact.mlmd_artifact.custom_properties:
        return float(artifact.get_float_custom_property(key))
    return None


def _write_report(evaluation_dir, report, summaries, model_dir, statistics, feature_keys):
    """report.html + errors.npz (report.py); a failure is logged, not fatal."""
    from components.evaluator import report as report_lib

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
