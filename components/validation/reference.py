"""What new data is compared with: `<output>/reference/` and ML Metadata.

* **Reference schema** `<output>/reference/schema.pbtxt`: written once, after
  the first run that pushed a model, from that run's inferred schema (relaxed
  by `drift.relax_schema`). From then on `create_pipeline` imports it
  (`ImportSchemaGen`, id `reference_schema`) and ExampleValidator and the
  DataGate validate every new span against it. It is a plain text proto: edit
  it to accept a change (TFDV's curated-schema workflow), or delete it and
  the next blessed run writes a new one. The pipeline imports a
  content-addressed copy (`reference/snapshots/schema-<sha>.pbtxt`) so an
  edited file is never hidden by ML Metadata's cache.
* **Reference statistics** for `anomaly-pipeline drift`: the AcceptedStatistics
  of the run that pushed the served model (the newest version under
  `serving_model/<name>/`), found through ML Metadata lineage; if that run
  predates the gate, the newest AcceptedStatistics.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from typing import Any, Dict, List, Optional

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from components.validation import drift

REFERENCE_DIR = "reference"
SCHEMA_FILE = "schema.pbtxt"
SNAPSHOT_DIR = "snapshots"
INFO_FILE = "reference.json"
# The MLMD type name of AcceptedStatistics: the KFP v2 compiler of TFX 1.16
# only accepts custom types named "<namespace>.<Name>".
ACCEPTED_TYPE = "anomaly_pipeline.AcceptedStatistics"
GATE_NODE = "DataGate"
SCHEMA_GEN_NODE = "SchemaGen"
PUSHER_NODE = "Pusher"


def reference_dir(output_dir: str) -> str:
    return os.path.join(os.path.abspath(output_dir), REFERENCE_DIR)


def schema_path(output_dir: str) -> str:
    return os.path.join(reference_dir(output_dir), SCHEMA_FILE)


def read_schema(path: str) -> schema_pb2.Schema:
    with open(path, encoding="utf-8") as f:
        return text_format.Parse(f.read(), schema_pb2.Schema())


def _write_atomic(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def pipeline_schema_file(output_dir: str) -> Optional[str]:
    """The reference schema for `create_pipeline` (a content-addressed copy of
    `reference/schema.pbtxt`), or None when there is no reference yet."""
    if "://" in output_dir:  # a remote root (compiled pipelines): no local reference
        return None
    src = schema_path(output_dir)
    try:
        with open(src, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return None
    digest = hashlib.sha256(data).hexdigest()[:16]
    snap = os.path.join(reference_dir(output_dir), SNAPSHOT_DIR, f"schema-{digest}.pbtxt")
    if not os.path.exists(snap):
        _write_atomic(snap, data.decode("utf-8"))
    return snap


def retire_if_columns_changed(output_dir: str, columns) -> Optional[str]:
    """`run --allow-schema-change` with other columns than the reference schema:
    renames the reference aside (`schema.pbtxt.retired-<UTC time>`) so this run
    is validated against its own schema and the next blessed run writes a new
    reference. Returns the retired file's path, or None when nothing changed."""
    path = schema_path(output_dir)
    if "://" in output_dir or not columns or not os.path.exists(path):
        return None
    if {f.name for f in read_schema(path).feature} == set(columns):
        return None
    import time

    retired = f"{path}.retired-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    os.replace(path, retired)
    logging.info("columns changed (--allow-schema-change): reference schema moved to %s", retired)
    return retired


# --------------------------------------------------------------------------- after a run


def _read_json(path: str) -> Optional[Dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (FileNotFoundError, ValueError):
        return None


def after_run(output_dir: str, metadata_path: str, label_column: Optional[str],
              pushed: bool, connection_config=None,
              pipeline_name: Optional[str] = None) -> Dict[str, Any]:
    """Called by `anomaly-pipeline run` after a successful run: writes the
    reference schema after the first push, and returns the gate's part of the
    summary (`data_gate`). Never raises: the run itself succeeded."""
    if "://" in output_dir:
        return {}
    try:
        return _after_run(output_dir, metadata_path, label_column, pushed, connection_config,
                          pipeline_name)
    except Exception as e:  # noqa: BLE001 - report it in the summary, keep the exit status
        logging.warning("data gate summary / reference schema: %s", e, exc_info=True)
        return {"error": f"{type(e).__name__}: {e}"}


def _after_run(output_dir, metadata_path, label_column, pushed, connection_config,
               pipeline_name) -> Dict[str, Any]:
    from pipeline.results import RunRecord

    rec = RunRecord(metadata_path, connection_config, pipeline_name)
    out: Dict[str, Any] = {}
    accepted = rec.outputs(GATE_NODE).get("accepted_statistics")
    report = _read_json(os.path.join(accepted.uri, "gate_report.json")) if accepted else None
    if report:
        top = [{k: m.get(k) for k in ("feature", "measure", "value", "threshold")}
               for m in sorted(report.get("drift_measurements") or [],
                               key=lambda m: -(m.get("value") or 0))[:3]]
        out.update({"accepted": bool(report.get("accepted")),
                    "drift_checked": bool(report.get("drift_checked")),
                    "largest_drift": top,
                    "report": os.path.join(accepted.uri, "gate_report.json")})
    path = schema_path(output_dir)
    created = False
    if pushed and not os.path.exists(path):
        schema_art = rec.outputs(SCHEMA_GEN_NODE).get("schema")
        if schema_art is not None:
            inferred = read_schema(os.path.join(schema_art.uri, SCHEMA_FILE))
            relaxed = drift.relax_schema(inferred, label_column)
            _write_atomic(path, text_format.MessageToString(relaxed))
            _write_atomic(os.path.join(reference_dir(output_dir), INFO_FILE), json.dumps({
                "schema_from": schema_art.uri, "run_id": rec.run.name,
                "label_column": label_column}, indent=2, sort_keys=True))
            created = True
            logging.info("reference schema written to %s", path)
    out["reference_schema"] = path if os.path.exists(path) else None
    out["reference_schema_created"] = created
    return out


# --------------------------------------------------------------------------- for `drift`


class ReferenceNotFound(LookupError):
    """OUTPUT_DIR holds nothing to compare with."""


def _store(metadata_path: str):
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(config)


def _prop(artifact, name):
    if name in artifact.custom_properties:
        v = artifact.custom_properties[name]
        kind = v.WhichOneof("value")
        return getattr(v, kind) if kind else None
    return None


def served_version_dir(output_dir: str, model_name: Optional[str]) -> Optional[str]:
    """The newest `serving_model/<name>/<version>` directory, or None."""
    base = os.path.join(os.path.abspath(output_dir), "serving_model")
    if not os.path.isdir(base):
        return None
    if model_name is None:
        names = sorted(n for n in os.listdir(base) if os.path.isdir(os.path.join(base, n)))
        if len(names) != 1:
            from pipeline.config import DEFAULT_MODEL_NAME
            model_name = DEFAULT_MODEL_NAME
        else:
            model_name = names[0]
    model_dir = os.path.join(base, model_name)
    if not os.path.isdir(model_dir):
        return None
    versions = [v for v in os.listdir(model_dir)
                if v.isdigit() and os.path.isdir(os.path.join(model_dir, v))]
    return os.path.join(model_dir, max(versions, key=int)) if versions else None


def _run_outputs(store, execution_id: int) -> Dict[str, List[Any]]:
    """{node name: [output artifacts]} of every execution in `execution_id`'s run."""
    from ml_metadata.proto import metadata_store_pb2

    run_ctx = [c for c in store.get_contexts_by_execution(execution_id)
               if c.type == "pipeline_run" or store.get_context_types_by_id(
                   [c.type_id])[0].name == "pipeline_run"]
    if not run_ctx:
        return {}
    execs = store.get_executions_by_context(run_ctx[0].id)
    node_of: Dict[int, str] = {}
    for e in execs:
        for c in store.get_contexts_by_execution(e.id):
            if store.get_context_types_by_id([c.type_id])[0].name == "node":
                node_of[e.id] = c.name.split(".")[-1]
    events = store.get_events_by_execution_ids([e.id for e in execs])
    out_types = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)
    ids = [ev.artifact_id for ev in events if ev.type in out_types]
    arts = {a.id: a for a in store.get_artifacts_by_id(ids)}
    result: Dict[str, List[Any]] = {}
    for ev in events:
        if ev.type in out_types and ev.artifact_id in arts:
            result.setdefault(node_of.get(ev.execution_id, "?"), []).append(arts[ev.artifact_id])
    return result


def served_reference(output_dir: str, model_name: Optional[str] = None) -> Dict[str, Any]:
    """The training statistics and schema new data is compared with.

    Returns {"statistics": DatasetFeatureStatisticsList, "schema": Schema,
    "label_column", "features", "statistics_uri", "schema_source", "model",
    "source"}. Raises ReferenceNotFound when OUTPUT_DIR has no run.
    """
    output_dir = os.path.abspath(output_dir)
    metadata_path = os.path.join(output_dir, "metadata.sqlite")
    if not os.path.isfile(metadata_path):
        raise ReferenceNotFound(f"no pipeline run in {output_dir} (no metadata.sqlite): "
                                f"run `anomaly-pipeline run --output {output_dir}` first")
    store = _store(metadata_path)
    model_dir = served_version_dir(output_dir, model_name)
    accepted = None
    run_schema = None
    source = None
    if model_dir is not None:
        pushed = [a for a in store.get_artifacts_by_type("PushedModel")
                  if _prop(a, "pushed") == 1]
        match = [a for a in pushed if os.path.abspath(str(_prop(a, "pushed_destination") or ""))
                 == model_dir]
        for art in sorted(match or [], key=lambda a: -a.id):
            events = [ev for ev in store.get_events_by_artifact_ids([art.id])]
            if not events:
                continue
            outputs = _run_outputs(store, events[0].execution_id)
            gate = [a for a in outputs.get(GATE_NODE, [])]
            schemas = outputs.get(SCHEMA_GEN_NODE, [])
            run_schema = schemas[0].uri if schemas else None
            if gate:
                accepted, source = gate[0], "the run that pushed the served model"
                break
    if accepted is None:
        live = [a for a in store.get_artifacts_by_type(ACCEPTED_TYPE) if a.state == a.LIVE]
        if not live:
            raise ReferenceNotFound(
                f"{output_dir}: no accepted training statistics recorded (no run passed "
                f"the data gate yet)")
        accepted = max(live, key=lambda a: a.id)
        source = "the last run whose data passed the gate"
    from components.validation.executor import STATS_FILE

    stats = statistics_pb2.DatasetFeatureStatisticsList()
    with open(os.path.join(accepted.uri, STATS_FILE), "rb") as f:
        stats.ParseFromString(f.read())
    label = _prop(accepted, "label_column") or None
    ref_schema = schema_path(output_dir)
    if os.path.exists(ref_schema):
        schema, schema_source = read_schema(ref_schema), ref_schema
    else:
        if run_schema is None:
            schema = _infer_schema(stats)
            schema_source = "inferred from the reference statistics"
        else:
            schema = read_schema(os.path.join(run_schema, SCHEMA_FILE))
            schema_source = os.path.join(run_schema, SCHEMA_FILE)
        schema = drift.relax_schema(schema, label)
    features = [drift.feature_name(f) for f in stats.datasets[0].features
                if drift.feature_name(f) != label]
    return {"statistics": stats, "schema": schema, "label_column": label,
            "features": features, "statistics_uri": accepted.uri,
            "statistics_id": accepted.id, "rows": int(stats.datasets[0].num_examples),
            "schema_source": schema_source, "model": model_dir, "source": source}


def _infer_schema(stats):
    import tensorflow_data_validation as tfdv

    return tfdv.infer_schema(stats, infer_feature_shape=True)
