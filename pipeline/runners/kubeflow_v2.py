"""Kubeflow Pipelines v2 / Vertex AI Pipelines: compile, don't run.

`anomaly-pipeline compile --target kubeflow-v2 --output pipeline.json
 --data gs://bucket/data --pipeline-root gs://bucket/anomaly --image IMAGE`
writes the PipelineJob spec KubeflowV2DagRunner produces for the same
`create_pipeline(cfg, ...)` every other runner runs. Nothing is read from
`--data` here: the paths are only written into the spec, and the pipeline's
containers read them when the job runs.

The image must hold this project (`pip install .` on top of
`gcr.io/tfx-oss-public/tfx:1.16.0`): the Transform/Trainer module paths and the
custom AnomalyEvaluator/RegistryPusher executors are imported by name inside
the containers (tensorflow/tfx#5763: code in `__main__` cannot be).
Only `KubeflowV2DagRunner.run` compiles: it opens the ParameterContext that
RuntimeParameters need (tensorflow/tfx#7733).
"""
import json
import logging
import os
import tempfile
from typing import Optional

from pipeline.config import PipelineConfig

DEFAULT_IMAGE = "gcr.io/your-project/anomaly-pipeline:latest"
TARGETS = ("kubeflow-v2",)


class CompileError(ValueError):
    """A setting that cannot be compiled for KFP v2 (reported as a usage error)."""


def build_spec(cfg: PipelineConfig, image: str = DEFAULT_IMAGE,
               display_name: Optional[str] = None) -> dict:
    """The PipelineJob spec (a JSON-able dict) for `cfg`."""
    if cfg.data.window > 1:
        raise CompileError(
            "--window > 1 cannot be compiled for kubeflow-v2: its compiler supports only the "
            "latest-artifact and latest-blessed-model resolvers; use --window 1 (each run "
            "trains on its newest span) or the local, beam or airflow runners")
    if cfg.metadata_mysql:
        logging.warning("metadata_mysql is ignored for kubeflow-v2: KFP/Vertex keep their "
                        "own ML Metadata")
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner as v2

    from pipeline import inputs
    from pipeline.dag import create_pipeline

    # Nothing is read from remote data: the roles come from a sample of a local
    # --data, else from the `columns` settings (pipeline/inputs.py).
    plan = inputs.plan_without_checks(cfg)
    pipeline = create_pipeline(cfg, plan, metadata_connection_config=None,
                               beam_pipeline_args=list(cfg.beam_args))
    runner = v2.KubeflowV2DagRunner(
        config=v2.KubeflowV2DagRunnerConfig(default_image=image, display_name=display_name))
    return runner.run(pipeline, write_out=False)


def write_spec(spec: dict, output: str) -> str:
    """Writes `spec` as JSON to `output` atomically (temp file + rename)."""
    out = os.path.abspath(output)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".pipeline-", suffix=".json", dir=os.path.dirname(out))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(spec, f, sort_keys=True, indent=1)
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return out


def task_names(spec: dict):
    """The task names of a compiled spec's root DAG."""
    return sorted(spec["pipelineSpec"]["root"]["dag"]["tasks"])


def compile_pipeline(cfg: PipelineConfig, output: str, image: str = DEFAULT_IMAGE,
                     display_name: Optional[str] = None) -> dict:
    spec = build_spec(cfg, image, display_name)
    path = write_spec(spec, output)
    return {"output": path, "target": "kubeflow-v2", "image": image,
            "pipeline_root": cfg.pipeline_root, "tasks": task_names(spec),
            "pipeline_name": cfg.pipeline_name}
