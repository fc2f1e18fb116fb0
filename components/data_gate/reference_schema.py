"""The reference schema new data is validated against: `<output>/reference/` (files only).

`<output>/reference/schema.pbtxt` is written once, after the first run that
pushed a model, from that run's inferred schema (relaxed by
`drift.relax_schema`; `write_reference_schema`). From then on the DAG imports
it (`ImportSchemaGen`, id `reference_schema`) and ExampleValidator and the
DataGate validate every new span against it. It is a plain text proto: edit it
to accept a change (TFDV's curated-schema workflow), or delete it and the next
blessed run writes a new one. The pipeline imports a content-addressed copy
(`reference/snapshots/schema-<sha>.pbtxt`) so an edited file is never hidden
by ML Metadata's cache. Which run's statistics are the reference is found
through ML Metadata by the pipeline (pipeline/lineage.py).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from typing import Dict, Optional

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

from components.columns import ColumnRoles
from components.data_gate import drift

REFERENCE_DIR = "reference"
SCHEMA_FILE = "schema.pbtxt"
SNAPSHOT_DIR = "snapshots"
INFO_FILE = "reference.json"


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
    retired = f"{path}.retired-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    os.replace(path, retired)
    logging.info("columns changed (--allow-schema-change): reference schema moved to %s", retired)
    return retired


def write_reference_schema(output_dir: str, inferred_schema_file: str,
                           label_column: Optional[str], run_id: Optional[str],
                           roles: Optional[ColumnRoles] = None, max_missing_share: float = 0.0
                           ) -> str:
    """Writes `<output>/reference/schema.pbtxt` from a run's inferred schema
    (relaxed, `drift.relax_schema`; each feature tagged with its role,
    `role:<numeric|categorical|passthrough|label>`) and `reference.json` saying
    where it came from. Returns the schema's path."""
    path = schema_path(output_dir)
    roles = roles or ColumnRoles(label=label_column)
    relaxed = tag_roles(drift.relax_schema(read_schema(inferred_schema_file), label_column,
                                           roles.passthrough, max_missing_share), roles)
    _write_atomic(path, text_format.MessageToString(relaxed))
    _write_atomic(os.path.join(reference_dir(output_dir), INFO_FILE), json.dumps({
        "schema_from": os.path.dirname(inferred_schema_file), "run_id": run_id,
        "label_column": label_column}, indent=2, sort_keys=True))
    logging.info("reference schema written to %s", path)
    return path


ROLE_TAG = "role:"


def tag_roles(schema: schema_pb2.Schema, roles: ColumnRoles) -> schema_pb2.Schema:
    """`schema` with each feature's `annotation.tag` holding `role:<role>` (replacing an
    older role tag): the roles live in the schema as in the model's metadata."""
    for f in schema.feature:
        tags = [t for t in f.annotation.tag if not t.startswith(ROLE_TAG)]
        del f.annotation.tag[:]
        f.annotation.tag.extend(tags + [ROLE_TAG + roles.role_of(f.name)])
    return schema


def roles_in(schema: schema_pb2.Schema) -> Dict[str, str]:
    """{feature: role} from the role tags of `schema` (empty for an untagged schema)."""
    return {f.name: t[len(ROLE_TAG):] for f in schema.feature for t in f.annotation.tag
            if t.startswith(ROLE_TAG)}


def infer_schema(stats) -> schema_pb2.Schema:
    """TFDV's schema of statistics (for a reference that predates the schema file)."""
    import tensorflow_data_validation as tfdv

    return tfdv.infer_schema(stats, infer_feature_shape=True)
