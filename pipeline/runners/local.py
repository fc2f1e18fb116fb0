"""LocalDagRunner: the default; in-process Beam DirectRunner, SQLite metadata."""
from pipeline.config import PipelineConfig
from pipeline.pipeline import create_pipeline


def metadata_config(cfg: PipelineConfig):
    """SQLite under --output, or MySQL with --metadata-mysql (pipeline/metadata.py)."""
    from pipeline import metadata

    return metadata.connection_config(cfg)


def run(cfg: PipelineConfig, input_base: str, input_pattern: str) -> None:
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner

    pipeline = create_pipeline(
        cfg, input_base, input_pattern,
        metadata_connection_config=metadata_config(cfg),
        # The in-memory DirectRunner measured fastest here (multi_processing
        # was slower on 2 cores); --beam-arg overrides.
        beam_pipeline_args=["--direct_running_mode=in_memory", *cfg.beam_args])
    LocalDagRunner().run(pipeline)
