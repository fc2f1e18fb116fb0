"""LocalDagRunner: the default; in-process Beam DirectRunner, SQLite metadata."""
from pipeline import metadata
from pipeline.config import PipelineConfig
from pipeline.dag import create_pipeline


def run(cfg: PipelineConfig, input_base: str, input_pattern: str) -> None:
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner

    from pipeline.runners.in_process import tune_in_process_runner

    tune_in_process_runner()

    pipeline = create_pipeline(
        cfg, input_base, input_pattern,
        metadata_connection_config=metadata.connection_config(cfg),
        # No Beam args: the in-memory DirectRunner (its default; measured
        # fastest here, multi_processing/multi_threading were slower on 2
        # cores). Any Beam arg also makes TFX build and stage an sdist of
        # itself for remote workers before each Beam component (~1.5 s each),
        # so only --beam-arg adds them.
        beam_pipeline_args=list(cfg.beam_args))
    from pipeline.runners.progress import report_nodes

    with report_nodes(len(pipeline.components), metadata.connection_config(cfg)):
        LocalDagRunner().run(pipeline)
