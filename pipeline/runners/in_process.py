"""What the in-process runners share: Beam's DirectRunner settings, and a run id of our choosing.

The embedded worker's state cache weighs every cached side input with
`objsize.get_deep_size`, which walks the globals of every loaded module on
each call; with TensorFlow loaded that is ~0.1 s per side-input read, and
TFT's analyzers read side inputs all the time (6 s of Transform's 25 s on a
million rows, bench/perf.py). With the cache off, side inputs are read from
the runner's in-memory state directly, which is what the cache would hold.
"""

_applied = False


def tune_in_process_runner() -> None:
    global _applied
    if _applied:
        return
    from apache_beam.runners.portability.fn_api_runner import worker_handlers

    worker_handlers.STATE_CACHE_SIZE_MB = 0
    _applied = True


def named_run(runner_class, run_id=None):
    """`runner_class` (LocalDagRunner, BeamDagRunner) whose run gets the pipeline run id
    `run_id` instead of the timestamp TFX picks, so the caller can read back its
    own run from ML Metadata (pipeline/lineage.py) whatever else ran meanwhile."""
    if run_id is None:
        return runner_class
    from tfx.dsl.compiler import constants
    from tfx.orchestration.portable import runtime_parameter_utils

    class NamedRun(runner_class):
        def run_with_ir(self, pipeline, *args, **kwargs):
            # The runner substitutes its own id only where the parameter is unset.
            runtime_parameter_utils.substitute_runtime_parameter(
                pipeline, {constants.PIPELINE_RUN_ID_PARAMETER_NAME: run_id})
            return super().run_with_ir(pipeline, *args, **kwargs)

    return NamedRun
