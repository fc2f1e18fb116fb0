"""The DAG, and only the DAG: every runner calls `create_pipeline(config, ...)`.

CsvExampleGen -> StatisticsGen -> SchemaGen -> ExampleValidator -> Transform
-> Trainer -> AnomalyEvaluator (+ latest blessed model as baseline) -> Pusher.
"""
from typing import Dict, List, Optional

from tfx import v1 as tfx
from tfx.proto import example_gen_pb2

from components.evaluator.component import AnomalyEvaluator
from pipeline.config import PipelineConfig

PREPROCESSING_FN = "components.transform.preprocessing_fn"
RUN_FN = "components.trainer.run_fn"

COMPONENT_IDS = (
    "CsvExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform",
    "Trainer", "latest_blessed_model_resolver", "AnomalyEvaluator", "Pusher",
)


def split_config(eval_ratio: float) -> example_gen_pb2.Output:
    """Train/eval split by hash of the whole row, in 100 buckets."""
    eval_buckets = min(99, max(1, int(round(100 * eval_ratio))))
    return example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
        example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=100 - eval_buckets),
        example_gen_pb2.SplitConfig.Split(name="eval", hash_buckets=eval_buckets),
    ]))


def trainer_config(cfg: PipelineConfig) -> Dict:
    """Only what changes the model, so a new --output keeps the cache valid."""
    return {"data": {"label_column": cfg.data.label_column}, "model": cfg.to_dict()["model"]}


def evaluator_config(cfg: PipelineConfig) -> Dict:
    d = cfg.to_dict()
    return {"data": {"label_column": cfg.data.label_column},
            "threshold": d["threshold"], "evaluation": d["evaluation"]}


def create_pipeline(
    cfg: PipelineConfig,
    input_base: str,
    input_pattern: str = "*.csv",
    metadata_connection_config=None,
    beam_pipeline_args: Optional[List[str]] = None,
) -> tfx.dsl.Pipeline:
    """Builds the TFX pipeline for `cfg`, reading CSVs under `input_base`."""
    import json

    example_gen = tfx.components.CsvExampleGen(
        input_base=input_base,
        input_config=tfx.proto.Input(splits=[
            tfx.proto.Input.Split(name="single_split", pattern=input_pattern)]),
        output_config=split_config(cfg.data.eval_ratio),
    )
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = tfx.components.SchemaGen(
        statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"],
        schema=schema_gen.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN,
        # The Trainer applies the transform graph inside tf.data; writing the
        # transformed examples would be a second full copy of the data.
        materialize=False,
        splits_config=tfx.proto.SplitsConfig(analyze=["train"]),
        custom_config={"label_column": cfg.data.label_column},
    )
    trainer = tfx.components.Trainer(
        run_fn=RUN_FN,
        examples=example_gen.outputs["examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema_gen.outputs["schema"],
        train_args=tfx.proto.TrainArgs(splits=["train"]),
        eval_args=tfx.proto.EvalArgs(splits=["eval"]),
        custom_config={"pipeline_config": json.dumps(trainer_config(cfg), sort_keys=True)},
    )
    model_resolver = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    evaluator = AnomalyEvaluator(
        examples=example_gen.outputs["examples"],
        model=trainer.outputs["model"],
        transform_graph=transform.outputs["transform_graph"],
        baseline_model=model_resolver.outputs["model"],
        evaluator_config=json.dumps(evaluator_config(cfg), sort_keys=True),
    )
    pusher = tfx.components.Pusher(
        model=evaluator.outputs["thresholded_model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory=cfg.serving_dir)),
    )
    components = [example_gen, statistics_gen, schema_gen, example_validator, transform,
                  trainer, model_resolver, evaluator, pusher]
    return tfx.dsl.Pipeline(
        pipeline_name=cfg.pipeline_name,
        pipeline_root=cfg.pipeline_root,
        components=components,
        enable_cache=cfg.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(beam_pipeline_args or []),
    )
