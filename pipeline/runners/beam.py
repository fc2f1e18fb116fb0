"""BeamDagRunner: each component's Beam work on the runner the --beam-arg flags name.

Defaults to the DirectRunner in multi_processing mode with one worker per core;
pass e.g. `--beam-arg=--runner=PortableRunner --beam-arg=--job_endpoint=...`
for a cluster (docs/runners.md). A runner outside this process also gets
this project's sdist as `--extra_package` (pipeline/beam_staging.py).
"""
import os
from typing import Optional

from pipeline import beam_staging, metadata
from pipeline.config import PipelineConfig
from pipeline.dag import create_pipeline


def beam_args(cfg: PipelineConfig):
    args = list(cfg.beam_args)
    if not any(a.startswith("--runner") for a in args):
        args = ["--direct_running_mode=multi_processing",
                f"--direct_num_workers={os.cpu_count() or 1}", *args]
    return beam_staging.with_project_package(args)


def run(cfg: PipelineConfig, plan, run_id: Optional[str] = None) -> None:
    """Runs the DAG on the input `plan` (pipeline/inputs.InputPlan); `run_id` names its
    pipeline_run context in ML Metadata."""
    from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner

    from pipeline.runners.in_process import named_run, tune_in_process_runner

    tune_in_process_runner()

    pipeline = create_pipeline(cfg, plan,
                               metadata_connection_config=metadata.connection_config(cfg),
                               beam_pipeline_args=beam_args(cfg))
    from pipeline.runners.progress import report_nodes

    with report_nodes(len(pipeline.components), metadata.connection_config(cfg)):
        named_run(BeamDagRunner, run_id)().run(pipeline)
