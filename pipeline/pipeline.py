"""The DAG, and only the DAG: every runner calls `create_pipeline(config, ...)`.

CsvExampleGen -> StatisticsGen -> SchemaGen -> ExampleValidator -> Transform
-> Trainer -> AnomalyEvaluator (+ latest blessed model as baseline) -> Pusher.
"""
import json
from typing import Dict, List, Optional

# Direct imports, not `tfx.v1`: the v1 facade also imports the Google Cloud
# extensions, ~10 s of start-up on every run.
from tfx.components import ExampleValidator, SchemaGen, StatisticsGen, Trainer, Transform
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.dsl.components.common.resolver import Resolver
from tfx.dsl.input_resolution.strategies.latest_artifact_strategy import LatestArtifactStrategy
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
    LatestBlessedModelStrategy)
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.proto import example_gen_pb2, pusher_pb2, trainer_pb2, transform_pb2
from tfx.types import Channel, standard_artifacts

from components.evaluator.component import AnomalyEvaluator
from components.example_gen import executor as example_gen_executor
from components.registry.component import RegistryPusher, registry_config
from components.validation import reference as data_reference
from components.validation.component import AcceptedStatistics, DataGate
from pipeline.config import PipelineConfig
from pipeline import spans
from pipeline.span_window import span_window_resolver

PREPROCESSING_FN = "components.transform.preprocessing_fn"
RUN_FN = "components.trainer.run_fn"

COMPONENT_IDS = (
    "CsvExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform",
    "Trainer", "latest_blessed_model_resolver", "AnomalyEvaluator", "Pusher",
    # The data gate (components/validation); `reference_schema` only once a
    # reference schema exists (after the first push).
    "accepted_statistics_resolver", "DataGate",
)


def split_config(eval_ratio: float) -> example_gen_pb2.Output:
    """Train/eval split by hash of the whole row, in 100 buckets."""
    eval_buckets = min(99, max(1, int(round(100 * eval_ratio))))
    return example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
        example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=100 - eval_buckets),
        example_gen_pb2.SplitConfig.Split(name="eval", hash_buckets=eval_buckets),
    ]))


def example_gen_component(cfg: PipelineConfig, input_base: str, input_pattern: str,
                          range_config=None) -> FileBasedExampleGen:
    """The CsvExampleGen node: TFX's file-based ExampleGen with our vectorized
    CSV executor (components/example_gen), id `CsvExampleGen`. Parquet or
    GZIP tf.Example TFRecords, as `cfg.data.example_format` says."""
    parquet = cfg.data.example_format == "parquet"
    return FileBasedExampleGen(
        input_base=input_base,
        input_config=example_gen_pb2.Input(splits=[
            example_gen_pb2.Input.Split(name="single_split", pattern=input_pattern)]),
        output_config=split_config(cfg.data.eval_ratio),
        range_config=range_config,
        output_data_format=(example_gen_pb2.FORMAT_PARQUET if parquet
                            else example_gen_pb2.FORMAT_TF_EXAMPLE),
        output_file_format=(example_gen_pb2.FILE_FORMAT_PARQUET if parquet
                            else example_gen_pb2.FORMAT_TFRECORDS_GZIP),
        custom_executor_spec=executor_spec.ExecutorClassSpec(example_gen_executor.Executor),
    ).with_id("CsvExampleGen")


def trainer_config(cfg: PipelineConfig) -> Dict:
    """Only what changes the model, so a new --output keeps the cache valid."""
    return {"data": {"label_column": cfg.data.label_column}, "model": cfg.to_dict()["model"]}


def evaluator_config(cfg: PipelineConfig) -> Dict:
    d = cfg.to_dict()
    return {"data": {"label_column": cfg.data.label_column},
            "threshold": d["threshold"], "evaluation": d["evaluation"]}


def gate_config(cfg: PipelineConfig) -> Dict:
    return {"label_column": cfg.data.label_column, "split": "train",
            **cfg.to_dict()["drift"]}


def create_pipeline(
    cfg: PipelineConfig,
    input_base: str,
    input_pattern: str = "*.csv",
    metadata_connection_config=None,
    beam_pipeline_args: Optional[List[str]] = None,
) -> tfx_pipeline.Pipeline:
    """Builds the TFX pipeline for `cfg`, reading CSVs under `input_base`."""
    example_gen = example_gen_component(cfg, input_base, input_pattern)
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
    reference_schema_file = data_reference.pipeline_schema_file(cfg.output_dir)
    if reference_schema_file:
        reference_schema = ImportSchemaGen(schema_file=reference_schema_file).with_id(
            "reference_schema")
        gate_nodes, validation_schema = [reference_schema], reference_schema.outputs["schema"]
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
        gate_config=json.dumps(gate_config(cfg), sort_keys=True),
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
        custom_config={"label_column": cfg.data.label_column},
    )
    transform.add_upstream_node(data_gate)
    trainer = Trainer(
        run_fn=RUN_FN,
        examples=training_examples,
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        train_args=trainer_pb2.TrainArgs(splits=["train"]),
        eval_args=trainer_pb2.EvalArgs(splits=["eval"]),
        custom_config={"pipeline_config": json.dumps(trainer_config(cfg), sort_keys=True)},
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
        evaluator_config=json.dumps(evaluator_config(cfg), sort_keys=True),
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
