"""TFX's StatisticsGen with this project's executor (components/statistics_gen/executor.py)."""
from tfx.components import StatisticsGen as TfxStatisticsGen
from tfx.dsl.components.base import executor_spec

from components.statistics_gen.executor import Executor


class StatisticsGen(TfxStatisticsGen):
    """TFX's StatisticsGen: same spec, parameters and artifact; computed in this process
    when its Beam pipeline would run here (components/beam_local.py)."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
