"""LocalDagRunner: the default; in-process Beam DirectRunner, SQLite metadata."""
from pipeline.config import PipelineConfig
from pipeline.pipeline import create_pipeline


def metadata_config(cfg: PipelineConfig):
    """SQLite under --output, or MySQL with --metadata-mysql (pipeline/metadata.py)."""
    from pipeline import metadata

    return metadata.connection_config(cfg)


def run(cfg: PipelineConfig, input_base: str, input_pattern: str) -> None:
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner

    from pipeline.beam_tuning import tune_in_process_runner

    tune_in_process_runner()

    pipeline = create_pipeline(
        cfg, input_base, input_pattern,
        metadata_connection_config=metadata_config(cfg),
        # No Beam args: the in-memory DirectRunner (its default; measured
        # fastest here, multi_processing/multi_threading were slower on 2
        # cores). Any Beam arg also makes TFX build and stage an sdist of
        # itself for remote workers before each Beam component (~1.5 s each),
        # so only --beam-arg adds them.
        beam_pipeline_args=list(cfg.beam_args))
    LocalDagRunner().run(pipeline)
