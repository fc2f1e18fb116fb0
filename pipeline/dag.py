"""The DAG, and only the DAG: every runner calls `create_pipeline(config, ...)`.

CsvExampleGen -> StatisticsGen -> SchemaGen -> ExampleValidator -> DataGate
(+ the last accepted statistics) -> Transform -> Trainer -> AnomalyEvaluator
(+ the latest blessed model as baseline) -> Pusher.

Each component gets its settings sections and the column roles as JSON
(`component_configs`), in one shape: {"columns": ColumnRoles, <section>: ...}.
"""
import json
import os
from typing import Any, Dict, List, Optional
from urllib.parse import urlparse

# Direct imports, not `tfx.v1`: the v1 facade also imports the Google Cloud
# extensions, ~10 s of start-up on every run.
from tfx.components import ExampleValidator, SchemaGen, Trainer
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.dsl.components.common.resolver import Resolver
from tfx.dsl.input_resolution.strategies.latest_artifact_strategy import LatestArtifactStrategy
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
    LatestBlessedModelStrategy)
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.proto import pusher_pb2, trainer_pb2, transform_pb2
from tfx.types import Channel, standard_artifacts

from components.columns import ColumnRoles, component_config
from components.data_gate import reference_schema
from components.data_gate.component import AcceptedStatistics, DataGate
from components.evaluator.component import AnomalyEvaluator
from components.example_gen.component import csv_example_gen
from components.registry import manifest
from components.registry.component import RegistryPusher
from components.statistics_gen.component import StatisticsGen
from components.transform_analysis.component import Transform
from pipeline import spans
from pipeline.config import PipelineConfig
from pipeline.span_window import span_window_resolver

PREPROCESSING_FN = "components.transform.preprocessing_fn"
RUN_FN = "components.trainer.run_fn"

COMPONENT_IDS = (
    "CsvExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform",
    "Trainer", "latest_blessed_model_resolver", "AnomalyEvaluator", "Pusher",
    # The data gate (components/data_gate); `reference_schema` only once a
    # reference schema exists (after the first push).
    "accepted_statistics_resolver", "DataGate",
)


def example_gen_component(cfg: PipelineConfig, plan, range_config=None):
    """The CsvExampleGen node as `create_pipeline` builds it (also the span backfill's)."""
    return csv_example_gen(plan.input_base, plan.pattern, cfg.data.eval_ratio,
                           cfg.data.example_format, range_config=range_config,
                           roles=_roles(cfg, plan), delimiter=plan.delimiter)


def _roles(cfg: PipelineConfig, plan) -> ColumnRoles:
    """The roles the components get: the plan's, without the reasons (`why` is for the
    summary; in the components' configs it would change their cache keys for nothing)."""
    roles = plan.roles if plan is not None else ColumnRoles()
    return ColumnRoles.from_dict({**roles.to_dict(), "label": cfg.data.label_column,
                                  "why": {}})


def component_configs(cfg: PipelineConfig, plan=None) -> Dict[str, Dict[str, Any]]:
    """What each component receives: only what changes its result (so a new
    --output keeps the cache valid). `plan`: the input plan (pipeline/inputs.py)
    whose column roles every component gets."""
    d, roles = cfg.to_dict(), _roles(cfg, plan)
    return {
        "transform": component_config(roles),
        "trainer": component_config(roles, model=d["model"]),
        "evaluator": component_config(roles, threshold=d["threshold"],
                                      evaluation=d["evaluation"],
                                      challengers=d["challengers"]),
        "gate": component_config(roles, drift=d["drift"]),
    }


def registry_config(cfg: PipelineConfig) -> Dict[str, Any]:
    """custom_config of the RegistryPusher.

    With a local store (sqlite/file URI) the artifacts go to `<output>/mlruns`;
    a tracking server keeps its own artifact location.
    """
    uri = cfg.registry_tracking_uri
    local = urlparse(uri).scheme in ("sqlite", "file", "")
    return {"registry": {
        "uri": uri,
        "name": cfg.model_name,
        "manifest": os.path.join(cfg.output_dir, manifest.MANIFEST_FILE),
        "artifact_location": os.path.join(cfg.output_dir, "mlruns") if local else None,
        "data_path": os.path.abspath(cfg.data.path),
        # The Pusher publishes holding the output's lock (components/output_lock.py).
        "lock_dir": cfg.output_dir,
        "lock_wait": cfg.lock_wait,
    }}


def create_pipeline(
    cfg: PipelineConfig,
    plan,
    metadata_connection_config=None,
    beam_pipeline_args: Optional[List[str]] = None,
) -> tfx_pipeline.Pipeline:
    """Builds the TFX pipeline for `cfg` on the input `plan` (pipeline/inputs.InputPlan:
    where the CSVs are, their delimiter, the column roles)."""
    configs = component_configs(cfg, plan)
    input_pattern = plan.pattern
    example_gen = example_gen_component(cfg, plan)
    # Span inputs with --window K: Transform and the Trainer read the newest K
    # ingested spans (pipeline/span_window.py); everything else the newest span.
    training_examples, span_nodes = example_gen.outputs["examples"], []
    if cfg.data.window > 1 and spans.has_span_spec(input_pattern):
        window = span_window_resolver(example_gen, cfg.data.window)
        training_examples, span_nodes = window.outputs["examples"], [window]
    statistics_gen = StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = SchemaGen(
        statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True)
    # New data is validated against the reference schema (that of the first
    # run that pushed a model) once there is one; Transform keeps SchemaGen's.
    gate_nodes, validation_schema = [], schema_gen.outputs["schema"]
    reference_schema_file = reference_schema.pipeline_schema_file(cfg.output_dir)
    if reference_schema_file:
        imported = ImportSchemaGen(schema_file=reference_schema_file).with_id(
            "reference_schema")
        gate_nodes, validation_schema = [imported], imported.outputs["schema"]
    example_validator = ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=validation_schema)
    # The data gate: anomalies or drift against the last accepted run's
    # statistics stop the run here, before Transform and the Trainer.
    accepted_statistics = Resolver(
        strategy_class=LatestArtifactStrategy,
        statistics=Channel(type=AcceptedStatistics),
    ).with_id("accepted_statistics_resolver")
    data_gate = DataGate(
        statistics=statistics_gen.outputs["statistics"],
        schema=validation_schema,
        anomalies=example_validator.outputs["anomalies"],
        baseline_statistics=accepted_statistics.outputs["statistics"],
        gate_config=json.dumps(configs["gate"], sort_keys=True),
    )
    gate_nodes += [accepted_statistics, data_gate]
    transform = Transform(
        examples=training_examples,
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN,
        # The Trainer applies the transform graph inside tf.data; writing the
        # transformed examples would be a second full copy of the data.
        materialize=False,
        splits_config=transform_pb2.SplitsConfig(analyze=["train"]),
        # StatisticsGen already describes the raw data; Transform's own pre-
        # and post-transform statistics would be two more full passes.
        disable_statistics=True,
        # The analyzer cache only pays off when a window of spans is analysed
        # again with one new span; writing it costs ~6 s a run (bench/perf.py).
        disable_analyzer_cache=cfg.data.window == 1,
        # The z-score graph traced as TF1 is analysed ~4 s faster than TF2's
        # (fewer tracings and saves); the Trainer's TFT layer loads either.
        force_tf_compat_v1=True,
        custom_config=configs["transform"],
    )
    transform.add_upstream_node(data_gate)
    trainer = Trainer(
        run_fn=RUN_FN,
        examples=training_examples,
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        train_args=trainer_pb2.TrainArgs(splits=["train"]),
        eval_args=trainer_pb2.EvalArgs(splits=["eval"]),
        custom_config=configs["trainer"],
    )
    model_resolver = Resolver(
        strategy_class=LatestBlessedModelStrategy,
        model=Channel(type=standard_artifacts.Model),
        model_blessing=Channel(type=standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    evaluator = AnomalyEvaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        transform_graph=transform.outputs["transform_graph"],
        baseline_model=model_resolver.outputs["model"],
        baseline_blessing=model_resolver.outputs["model_blessing"],
        evaluator_config=json.dumps(configs["evaluator"], sort_keys=True),
        statistics=statistics_gen.outputs["statistics"],  # for report.html
    )
    # The stock Pusher's spec + executor subclass: atomic push, then MLflow
    # registration; evaluation/examples/schema only describe the version.
    pusher = RegistryPusher(
        model=evaluator.outputs["thresholded_model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=cfg.serving_dir)),
        custom_config=registry_config(cfg),
        evaluation=evaluator.outputs["evaluation"],
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
    ).with_id("Pusher")
    components = [example_gen, *span_nodes, statistics_gen, schema_gen, example_validator,
                  *gate_nodes, transform, trainer, model_resolver, evaluator, pusher]
    return tfx_pipeline.Pipeline(
        pipeline_name=cfg.pipeline_name,
        pipeline_root=cfg.pipeline_root,
        components=components,
        enable_cache=cfg.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(beam_pipeline_args or []),
    )
