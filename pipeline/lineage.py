"""The one reader of ML Metadata: what the runs did, read back from the store.

Everything the CLI reports after a run (the summary, the data gate's part,
the spans trained on) and everything `drift` compares with (the statistics
the served model's run accepted) is read here, never guessed from directory
layout. The store is the SQLite file `<output>/metadata.sqlite` (read-only) or
the MySQL database of `--metadata-mysql` (pipeline/metadata.py).
"""
import os
from typing import Any, Dict, List, Optional

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

OUTPUT_EVENTS = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)
STATE = metadata_store_pb2.Execution


def open_store(metadata_path: str, connection_config=None) -> metadata_store.MetadataStore:
    """The store: `connection_config` (MySQL) when given, else the SQLite file, read-only."""
    config = connection_config
    if config is None:
        config = metadata_store_pb2.ConnectionConfig()
        config.sqlite.filename_uri = metadata_path
        config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(config)


def prop(artifact, name: str):
    """A custom property's value (int, double or string), or None."""
    if name in artifact.custom_properties:
        v = artifact.custom_properties[name]
        kind = v.WhichOneof("value")
        return getattr(v, kind) if kind else None
    return None


def _int_prop(artifact, name: str) -> Optional[int]:
    v = prop(artifact, name)
    return None if v in (None, "") else int(v)


class RunRecord:
    """The components of one pipeline run (`run_id`, else the newest) and their outputs."""

    def __init__(self, metadata_path: str, connection_config=None,
                 pipeline_name: Optional[str] = None, run_id: Optional[str] = None):
        # pipeline_name: only runs of that pipeline (a shared store holds several).
        # run_id: the pipeline_run context of that name, the run the caller started
        # (pipeline/runners/in_process.py named_run), whatever ran since.
        self.store = open_store(metadata_path, connection_config)
        if run_id is not None:
            run = self.store.get_context_by_type_and_name("pipeline_run", run_id)
            if run is None:
                raise RuntimeError(f"pipeline run {run_id} is not recorded in {metadata_path}")
            runs = [run]
        else:
            runs = self.store.get_contexts_by_type("pipeline_run")
        if pipeline_name is not None:
            runs = [r for r in runs if pipeline_name in {
                p.name for p in self.store.get_parent_contexts_by_context(r.id)}]
        if not runs:
            raise RuntimeError(f"no pipeline run recorded in {metadata_path}"
                               + (f" under the name {run_id}" if run_id else ""))
        self.run = max(runs, key=lambda c: (c.create_time_since_epoch, c.id))
        run_execs = {e.id: e for e in self.store.get_executions_by_context(self.run.id)}
        self.executions: Dict[str, Any] = {}
        for node in self.store.get_contexts_by_type("node"):
            for e in self.store.get_executions_by_context(node.id):
                if e.id in run_execs:
                    self.executions[node.name.split(".")[-1]] = e

    def components(self) -> Dict[str, List[str]]:
        ran, cached = [], []
        for name, e in sorted(self.executions.items(), key=lambda kv: kv[1].id):
            if e.last_known_state == STATE.CACHED:
                cached.append(name)
            elif e.last_known_state == STATE.COMPLETE:
                ran.append(name)
        return {"ran": ran, "cached": cached}

    def ran(self, node: str) -> bool:
        """Whether `node` executed (not from the cache) and completed in this run."""
        e = self.executions.get(node)
        return e is not None and e.last_known_state == STATE.COMPLETE

    def outputs(self, node: str) -> Dict[str, Any]:
        """{output key: artifact} of a node's execution in this run."""
        e = self.executions.get(node)
        if e is None:
            return {}
        events = [ev for ev in self.store.get_events_by_execution_ids([e.id])
                  if ev.type in OUTPUT_EVENTS]
        arts = {a.id: a for a in self.store.get_artifacts_by_id([ev.artifact_id for ev in events])}
        out = {}
        for ev in events:
            key = ev.path.steps[0].key if ev.path.steps else str(ev.artifact_id)
            out[key] = arts[ev.artifact_id]
        return out

    def input_spans(self, node: str, key: str = "examples") -> Optional[List[int]]:
        """Spans of the Examples `node` read in this run, ascending; None without
        an execution of `node`."""
        e = self.executions.get(node)
        if e is None:
            return None
        ids = [ev.artifact_id for ev in self.store.get_events_by_execution_ids([e.id])
               if ev.type == metadata_store_pb2.Event.INPUT and ev.path.steps
               and ev.path.steps[0].key == key]
        return sorted(s for s in (_int_prop(a, "span")
                                  for a in self.store.get_artifacts_by_id(ids)) if s is not None)


def ingested_spans(connection_config, pipeline_name: str, node_id: str) -> List[int]:
    """Span numbers of the live Examples `node_id` of `pipeline_name` recorded (any run)."""
    store = metadata_store.MetadataStore(connection_config)
    ctx = store.get_context_by_type_and_name("node", f"{pipeline_name}.{node_id}")
    if ctx is None:
        return []
    return sorted({s for s in (_int_prop(a, "span") for a in store.get_artifacts_by_context(ctx.id)
                              if a.state == a.LIVE) if s is not None})


def _context_type(store, context) -> str:
    return store.get_context_types_by_id([context.type_id])[0].name


def run_outputs(store, execution_id: int) -> Dict[str, List[Any]]:
    """{node name: [output artifacts]} of every execution in `execution_id`'s run."""
    run_ctx = [c for c in store.get_contexts_by_execution(execution_id)
               if _context_type(store, c) == "pipeline_run"]
    if not run_ctx:
        return {}
    execs = store.get_executions_by_context(run_ctx[0].id)
    node_of: Dict[int, str] = {}
    for e in execs:
        for c in store.get_contexts_by_execution(e.id):
            if _context_type(store, c) == "node":
                node_of[e.id] = c.name.split(".")[-1]
    events = store.get_events_by_execution_ids([e.id for e in execs])
    ids = [ev.artifact_id for ev in events if ev.type in OUTPUT_EVENTS]
    arts = {a.id: a for a in store.get_artifacts_by_id(ids)}
    result: Dict[str, List[Any]] = {}
    for ev in events:
        if ev.type in OUTPUT_EVENTS and ev.artifact_id in arts:
            result.setdefault(node_of.get(ev.execution_id, "?"), []).append(arts[ev.artifact_id])
    return result


def pushing_run_outputs(store, model_dir: str) -> Optional[Dict[str, List[Any]]]:
    """The outputs of the run whose Pusher pushed `model_dir` (newest such push), or None."""
    model_dir = os.path.abspath(model_dir)
    pushed = [a for a in store.get_artifacts_by_type("PushedModel")
              if prop(a, "pushed") == 1
              and os.path.abspath(str(prop(a, "pushed_destination") or "")) == model_dir]
    for art in sorted(pushed, key=lambda a: -a.id):
        events = store.get_events_by_artifact_ids([art.id])
        if events:
            return run_outputs(store, events[0].execution_id)
    return None


def newest_live(store, type_name: str):
    """The newest live artifact of `type_name`, or None."""
    live = [a for a in store.get_artifacts_by_type(type_name) if a.state == a.LIVE]
    return max(live, key=lambda a: a.id) if live else None
