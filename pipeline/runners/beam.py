"""BeamDagRunner: each component's Beam work on the runner the --beam-arg flags name.

Defaults to the DirectRunner in multi_processing mode with one worker per core;
pass e.g. `--beam-arg=--runner=PortableRunner --beam-arg=--job_endpoint=...`
for a cluster (see README).
"""
import os

from pipeline import metadata
from pipeline.config import PipelineConfig
from pipeline.dag import create_pipeline


def beam_args(cfg: PipelineConfig):
    args = list(cfg.beam_args)
    if not any(a.startswith("--runner") for a in args):
        args = ["--direct_running_mode=multi_processing",
                f"--direct_num_workers={os.cpu_count() or 1}", *args]
    return args


def run(cfg: PipelineConfig, input_base: str, input_pattern: str) -> None:
    from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner

    from pipeline.runners.in_process import tune_in_process_runner

    tune_in_process_runner()

    pipeline = create_pipeline(cfg, input_base, input_pattern,
                               metadata_connection_config=metadata.connection_config(cfg),
                               beam_pipeline_args=beam_args(cfg))
    from pipeline.runners.progress import report_nodes

    with report_nodes(len(pipeline.components), metadata.connection_config(cfg)):
        BeamDagRunner().run(pipeline)
