"""Whether a component's Beam pipeline would run inside this process.

With no Beam arguments (the local runner's default, pipeline/runners/local.py)
or with the DirectRunner in its in-memory or multi-threaded mode, a Beam
pipeline runs in the executor's own process and thread pool: every stage is
then Beam's bookkeeping (pickling each DoFn, building bundles, a TF graph
loaded per stage) around work that plain numpy/Arrow code does in one pass.
StatisticsGen, Transform and the AnomalyEvaluator then do that pass themselves
(components/statistics, components/transform_analysis, components/evaluator), with the
same code Beam would run (TFDV's generators, TFT's rules, the same DoFn and
CombineFn), so the artifacts are the same. Any other runner (PortableRunner,
Flink, Spark, Dataflow, or the DirectRunner's multi_processing mode) keeps the
Beam pipeline: the work goes where the user sent it.
"""
from typing import Optional, Sequence

IN_PROCESS_RUNNERS = ("directrunner", "direct")
IN_PROCESS_MODES = ("in_memory", "multi_threading")


def _value(args: Sequence[str], name: str) -> Optional[str]:
    """The last value of `--name=value` or `--name value` in `args`."""
    found, flag = None, f"--{name}"
    for i, arg in enumerate(args):
        arg = str(arg)
        if arg.startswith(flag + "="):
            found = arg[len(flag) + 1:]
        elif arg == flag and i + 1 < len(args):
            found = str(args[i + 1])
    return found


def runs_in_this_process(beam_args: Optional[Sequence[str]]) -> bool:
    """True when a Beam pipeline built from `beam_args` would run in this process."""
    args = list(beam_args or [])
    runner = _value(args, "runner")
    if runner is not None and runner.strip().lower() not in IN_PROCESS_RUNNERS:
        return False
    mode = _value(args, "direct_running_mode")
    return mode is None or mode.strip().lower() in IN_PROCESS_MODES
