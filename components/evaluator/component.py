"""AnomalyEvaluator: a label-optional evaluator for reconstruction-error models.

TFMA is built around labels and a predict signature; an autoencoder has
neither, so this component replaces the stock Evaluator while keeping its
blessing contract, which Pusher and LatestBlessedModelStrategy rely on.

Inputs
  examples         Examples from ExampleGen (the `eval` split is scored).
  model            Model from the Trainer (signature `score_stored_examples`).
  transform_graph  TransformGraph: the raw feature spec, to parse the label.
  baseline_model   optional Model, usually the latest blessed one.
  baseline_blessing optional ModelBlessing that blessed the baseline: its
                   recorded threshold and eval split (both models are also
                   judged on that split, so poisoned new data cannot vouch
                   for a worse model).
  statistics       optional ExampleStatistics from StatisticsGen: the data
                   statistics shown in report.html.
Outputs
  blessing          ModelBlessing, written exactly as the stock Evaluator does.
  evaluation        ModelEvaluation holding evaluation.json, threshold.json,
                    report.html (report.py) and errors.npz.
  thresholded_model Model: the candidate with the fitted threshold baked into
                    its signatures and assets/threshold.json; Pusher pushes it.
Parameters
  evaluator_config  JSON: {"columns": ColumnRoles, "threshold": ThresholdSettings,
                    "evaluation": EvaluationSettings} (settings.py).
"""
from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_beam_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.evaluator import executor

EXAMPLES_KEY = "examples"
MODEL_KEY = "model"
TRANSFORM_GRAPH_KEY = "transform_graph"
BASELINE_MODEL_KEY = "baseline_model"
BASELINE_BLESSING_KEY = "baseline_blessing"
STATISTICS_KEY = "statistics"
BLESSING_KEY = "blessing"
EVALUATION_KEY = "evaluation"
THRESHOLDED_MODEL_KEY = "thresholded_model"
CONFIG_KEY = "evaluator_config"


class AnomalyEvaluatorSpec(types.ComponentSpec):
    PARAMETERS = {CONFIG_KEY: ExecutionParameter(type=str)}
    INPUTS = {
        EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples),
        MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
        TRANSFORM_GRAPH_KEY: ChannelParameter(type=standard_artifacts.TransformGraph),
        BASELINE_MODEL_KEY: ChannelParameter(type=standard_artifacts.Model, optional=True),
        BASELINE_BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing,
                                                optional=True),
        STATISTICS_KEY: ChannelParameter(type=standard_artifacts.ExampleStatistics,
                                         optional=True),
    }
    OUTPUTS = {
        BLESSING_KEY: ChannelParameter(type=standard_artifacts.ModelBlessing),
        EVALUATION_KEY: ChannelParameter(type=standard_artifacts.ModelEvaluation),
        THRESHOLDED_MODEL_KEY: ChannelParameter(type=standard_artifacts.Model),
    }


class AnomalyEvaluator(base_beam_component.BaseBeamComponent):
    SPEC_CLASS = AnomalyEvaluatorSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(self, examples: types.BaseChannel, model: types.BaseChannel,
                 transform_graph: types.BaseChannel,
                 baseline_model: Optional[types.BaseChannel] = None,
                 baseline_blessing: Optional[types.BaseChannel] = None,
                 evaluator_config: str = "{}",
                 statistics: Optional[types.BaseChannel] = None):
        spec = AnomalyEvaluatorSpec(
            examples=examples,
            model=model,
            transform_graph=transform_graph,
            baseline_model=baseline_model,
            baseline_blessing=baseline_blessing,
            statistics=statistics,
            evaluator_config=evaluator_config,
            blessing=types.Channel(type=standard_artifacts.ModelBlessing),
            evaluation=types.Channel(type=standard_artifacts.ModelEvaluation),
            thresholded_model=types.Channel(type=standard_artifacts.Model),
        )
        super().__init__(spec=spec)
