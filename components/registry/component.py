"""RegistryPusher: the stock Pusher with the registry executor and three extra inputs.

Same spec as `tfx.components.Pusher` (model, model_blessing, infra_blessing,
push_destination, custom_config -> pushed_model), plus optional inputs whose
only use is to describe the pushed version in the registry:

  evaluation  ModelEvaluation from AnomalyEvaluator (evaluation.json: metrics)
  examples    Examples from ExampleGen (span, and lineage to the data)
  schema      Schema from SchemaGen (schema digest)

Passing them as inputs (rather than finding files by path) records in ML
Metadata which evaluation and data a registered version came from.
The pipeline gives it the id "Pusher".
"""
from typing import Any, Dict, Optional

from tfx import types
from tfx.components import Pusher
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter
from tfx.utils import json_utils

from components.registry import executor


class RegistryPusherSpec(standard_component_specs.PusherSpec):
    INPUTS = dict(
        standard_component_specs.PusherSpec.INPUTS,
        **{
            executor.EVALUATION_KEY: ChannelParameter(
                type=standard_artifacts.ModelEvaluation, optional=True),
            executor.EXAMPLES_KEY: ChannelParameter(
                type=standard_artifacts.Examples, optional=True),
            executor.SCHEMA_KEY: ChannelParameter(
                type=standard_artifacts.Schema, optional=True),
        })


class RegistryPusher(Pusher):
    SPEC_CLASS = RegistryPusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, model: types.BaseChannel, model_blessing: types.BaseChannel,
                 push_destination: pusher_pb2.PushDestination,
                 custom_config: Optional[Dict[str, Any]] = None,
                 evaluation: Optional[types.BaseChannel] = None,
                 examples: Optional[types.BaseChannel] = None,
                 schema: Optional[types.BaseChannel] = None):
        spec = RegistryPusherSpec(
            model=model,
            model_blessing=model_blessing,
            push_destination=push_destination,
            custom_config=json_utils.dumps(custom_config),
            evaluation=evaluation,
            examples=examples,
            schema=schema,
            pushed_model=types.Channel(type=standard_artifacts.PushedModel))
        # Pusher.__init__ builds a stock PusherSpec; build ours instead.
        base_component.BaseComponent.__init__(self, spec=spec)
