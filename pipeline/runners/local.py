"""LocalDagRunner: the default; in-process Beam DirectRunner, SQLite metadata."""
from typing import Optional

from pipeline import metadata
from pipeline.config import PipelineConfig
from pipeline.dag import create_pipeline


def run(cfg: PipelineConfig, plan, run_id: Optional[str] = None) -> None:
    """Runs the DAG on the input `plan` (pipeline/inputs.InputPlan); `run_id` names its
    pipeline_run context in ML Metadata."""
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner

    from pipeline.runners.in_process import named_run, tune_in_process_runner

    tune_in_process_runner()

    pipeline = create_pipeline(
        cfg, plan,
        metadata_connection_config=metadata.connection_config(cfg),
        # No Beam args: the in-memory DirectRunner (its default; measured
        # fastest here, multi_processing/multi_threading were slower on 2
        # cores). Any Beam arg also makes TFX build and stage an sdist of
        # itself for remote workers before each Beam component (~1.5 s each),
        # so only --beam-arg adds them.
        beam_pipeline_args=list(cfg.beam_args))
    from pipeline.runners.progress import report_nodes

    with report_nodes(len(pipeline.components), metadata.connection_config(cfg)):
        named_run(LocalDagRunner, run_id)().run(pipeline)
