"""One progress line per DAG node as it starts and ends, for LocalDagRunner and BeamDagRunner.

Both runners build one `tfx.orchestration.portable.launcher.Launcher` per node
and call its `launch()` in this process: LocalDagRunner in its loop over
`pipeline.nodes` (tfx/orchestration/local/local_dag_runner.py), BeamDagRunner
in each node's DoFn (tfx/orchestration/beam/beam_dag_runner.py). For the
duration of a run, `report_nodes()` wraps `Launcher.launch` and asks ML
Metadata how the node ended: COMPLETE = ran, CACHED = reused from the cache,
no execution = skipped. A resolver that found nothing (a first run) is
published FAILED by TFX (resolver_node_handler.py); that is no failure here.

    [ 4/11] Transform ...            (on a TTY: the live bar)
    [ 4/11] Transform done 11.2 s
"""
import contextlib
import itertools
import threading
import time
from typing import Iterator, Optional

from components import progress
from pipeline import console

RESOLVER_TYPE = "tfx.dsl.components.common.resolver.Resolver"
TASK = "dag"


def _outcome(connection_config, info) -> str:
    execution_id = getattr(info, "execution_id", None)
    if execution_id is None:
        return "skipped"
    try:
        from ml_metadata.metadata_store import metadata_store
        from ml_metadata.proto import metadata_store_pb2 as mlmd

        (execution,) = metadata_store.MetadataStore(connection_config).get_executions_by_id(
            [execution_id])
    except Exception:  # noqa: BLE001 - progress only: never fail a run over it
        return "done"
    return {mlmd.Execution.CACHED: "cached", mlmd.Execution.COMPLETE: "done",
            mlmd.Execution.FAILED: "failed"}.get(execution.last_known_state, "done")


def _failure(exc: BaseException) -> str:
    from components.data_gate.errors import find_in_chain

    return "stopped the run" if find_in_chain(exc) is not None else "failed"


@contextlib.contextmanager
def report_nodes(total: int, connection_config) -> Iterator[None]:
    """Within: `[i/total] <node id> ...` when a node starts, `... <outcome> <s> s` when it ends."""
    from tfx.orchestration.portable import launcher

    cls = launcher.Launcher
    original = cls.launch
    counter, lock = itertools.count(1), threading.Lock()
    width = len(str(total))

    def launch(self) -> Optional[object]:
        node = getattr(self, "_pipeline_node", None)
        if node is None:
            return original(self)
        with lock:
            index = next(counter)
        node_id = node.node_info.id
        tag = f"[{index:>{width}}/{total}] {node_id}"
        progress.step("%s ...", tag, task=TASK, done=index - 1, total=total, label=tag)
        started = time.monotonic()
        try:
            info = original(self)
        except BaseException as e:
            console.keep_handlers()
            progress.step("%s %s after %.1f s", tag, _failure(e), time.monotonic() - started,
                          task=TASK, keep=True, end=True)
            raise
        console.keep_handlers()
        outcome = _outcome(connection_config, info)
        if node.node_info.type.name == RESOLVER_TYPE:
            outcome = {"done": "resolved", "failed": "nothing to resolve yet"}.get(outcome,
                                                                                  outcome)
        # The bar ends with its node: the next one's elapsed time starts from 0.
        progress.step("%s %s %.1f s", tag, outcome, time.monotonic() - started, task=TASK,
                      keep=True, end=True)
        return info

    cls.launch = launch
    try:
        yield
    finally:
        cls.launch = original
        progress.step("", task=TASK, end=True)
