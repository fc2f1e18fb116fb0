"""TFX's Transform with this project's executor (components/transform_analysis/executor.py)."""
from tfx.components import Transform as TfxTransform
from tfx.dsl.components.base import executor_spec

from components.transform_analysis.executor import Executor


class Transform(TfxTransform):
    """TFX's Transform: same spec, parameters and outputs; the analysis runs in this
    process when the Beam pipeline would (components/beam_local.py)."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
