"""Registry pusher executor: the stock Pusher, made atomic, plus the registry handoff.

Subclasses `tfx.components.pusher.executor.Executor` and reuses its
`CheckBlessing`, `GetModelPath`, `_MarkPushed` and `_MarkNotPushed` (the
tfx-addons HFPusher pattern). Differences from the stock `Do`:

1. Atomic push. The model is copied to `<base>/.tmp-<version>` and then
   `os.rename`d to `<base>/<version>`, so a reader polling `serving_model/`
   (TF Serving, `anomaly-pipeline score`) never sees a partial version. TF
   Serving ignores the non-numeric `.tmp-*` name. A version number already
   taken is bumped instead of silently skipping the push. (Remote base
   directories, e.g. gs://, have no atomic rename: there the stock order is
   kept, saved_model.pb last.)
2. Registry handoff, after the push, when `custom_config["registry"]` is set:
   the version is registered in MLflow with its tags (threshold and method,
   metrics, pipeline run id, data path/span, schema digest, SavedModel path),
   `champion` moves to it if it is the newest blessed version, and
   `registry.json` gets an entry. A registration failure never loses the
   pushed model: it is logged, recorded on the PushedModel artifact
   (`registry_error`) and in registry.json, and the run summary shows it.

custom_config = {"registry": {"uri", "name", "manifest", "artifact_location",
                              "data_path"}}
"""
import errno
import hashlib
import json
import logging
import os
import shutil
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

EVALUATION_KEY = "evaluation"
EXAMPLES_KEY = "examples"
SCHEMA_KEY = "schema"
EVALUATION_FILE = "evaluation.json"
THRESHOLD_FILE = "threshold.json"
TMP_PREFIX = ".tmp-"

# Custom properties of the PushedModel artifact (read by pipeline/results.py).
PROP_URI = "registry_uri"
PROP_NAME = "registry_name"
PROP_VERSION = "registry_version"
PROP_CHAMPION = "registry_champion"
PROP_ERROR = "registry_error"
PROP_MANIFEST = "registry_manifest"

SCALAR_METRICS = ("precision", "recall", "f1", "roc_auc", "pr_auc", "accuracy",
                  "false_alarm_rate", "flagged_rate", "eval_rows", "n_anomalies")


# --------------------------------------------------------------------- atomic push


def _copy_tree(src: str, dst: str) -> None:
    """Copies `src` into the existing empty dir `dst`, saved_model.pb last."""
    for root, dirs, files in os.walk(src):
        rel = os.path.relpath(root, src)
        target = os.path.join(dst, rel) if rel != "." else dst
        os.makedirs(target, exist_ok=True)
        for name in sorted(files, key=lambda n: n == "saved_model.pb"):
            shutil.copy2(os.path.join(root, name), os.path.join(target, name))


def _fsync_tree(path: str) -> None:
    for root, _, files in os.walk(path):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def push_atomically(src: str, base_dir: str, version: Optional[int] = None,
                    copy_tree: Callable[[str, str], None] = _copy_tree,
                    clock: Callable[[], float] = time.time) -> Tuple[str, str]:
    """Copies the SavedModel `src` to `<base_dir>/<version>/` atomically.

    Returns (version, path). The copy goes to `<base_dir>/.tmp-<version>`
    (created exclusively, so two concurrent pushers never share it) and is
    renamed into place; a version already taken (or being written) is bumped.
    On failure the temporary directory is removed and nothing is published.
    """
    os.makedirs(base_dir, exist_ok=True)
    v = int(clock()) if version is None else int(version)
    for _ in range(1000):
        final = os.path.join(base_dir, str(v))
        tmp = os.path.join(base_dir, f"{TMP_PREFIX}{v}")
        if os.path.exists(final):
            v += 1
            continue
        try:
            os.mkdir(tmp)
        except FileExistsError:  # another push is writing this version
            v += 1
            continue
        try:
            copy_tree(src, tmp)
            _fsync_tree(tmp)
            if os.path.exists(final):
                raise FileExistsError(final)
            os.rename(tmp, final)
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(e, FileExistsError) or e.errno in (errno.ENOTEMPTY, errno.EEXIST):
                v += 1  # lost a race for this version number
                continue
            raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        dir_fd = os.open(base_dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return str(v), final
    raise RuntimeError(f"could not find a free version number under {base_dir}")


def _push_remote(src: str, base_dir: str) -> Tuple[str, str]:
    """Stock Pusher order for filesystems without atomic rename."""
    v = int(time.time())
    while fileio.exists(os.path.join(base_dir, str(v))):
        v += 1
    dst = os.path.join(base_dir, str(v))
    io_utils.copy_dir(src, dst, deny_regex_patterns=[r"saved_model\.pb"])
    if fileio.exists(os.path.join(src, "saved_model.pb")):
        io_utils.copy_file(os.path.join(src, "saved_model.pb"),
                           os.path.join(dst, "saved_model.pb"))
    return str(v), dst


# --------------------------------------------------------------------- handoff data


def _read_json(path: str) -> Optional[Dict[str, Any]]:
    if not fileio.exists(path):
        return None
    with fileio.open(path, "r") as f:
        return json.loads(f.read())


def _single(input_dict: Dict[str, List[types.Artifact]], key: str) -> Optional[types.Artifact]:
    arts = input_dict.get(key) or []
    return arts[0] if arts else None


def schema_digest(schema_uri: str) -> Optional[str]:
    """sha256 of the schema file SchemaGen wrote (schema.pbtxt)."""
    path = os.path.join(schema_uri, "schema.pbtxt")
    if not fileio.exists(path):
        return None
    with fileio.open(path, "rb") as f:
        return "sha256:" + hashlib.sha256(f.read()).hexdigest()


def version_record(input_dict: Dict[str, List[types.Artifact]], serving_path: str,
                   serving_version: str, data_path: Optional[str],
                   pipeline_run_id: Optional[str], blessed: bool) -> Dict[str, Any]:
    """The fields registered with a version (MLflow tags and registry.json)."""
    thr = _read_json(os.path.join(serving_path, "assets", THRESHOLD_FILE)) or {}
    evaluation = _single(input_dict, EVALUATION_KEY)
    report = _read_json(os.path.join(evaluation.uri, EVALUATION_FILE)) if evaluation else None
    metrics = {k: float(v) for k, v in ((report or {}).get("metrics") or {}).items()
               if k in SCALAR_METRICS and isinstance(v, (int, float)) and v is not None}
    examples = _single(input_dict, EXAMPLES_KEY)
    schema = _single(input_dict, SCHEMA_KEY)
    span = None
    if examples is not None:
        try:
            span = int(examples.span)
        except (AttributeError, TypeError, ValueError):
            span = None
    return {
        "serving_version": str(serving_version),
        "saved_model_path": serving_path,
        "blessed": bool(blessed),
        "threshold": thr.get("threshold"),
        "threshold_method": thr.get("method"),
        "threshold_params": thr.get("params") or {},
        "metrics": metrics,
        "pipeline_run_id": pipeline_run_id,
        "data_path": data_path,
        "data_span": span,
        "examples_uri": examples.uri if examples is not None else None,
        "schema_digest": schema_digest(schema.uri) if schema is not None else None,
        "evaluation_uri": evaluation.uri if evaluation is not None else None,
        "pushed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def mlflow_tags(record: Dict[str, Any]) -> Dict[str, str]:
    tags = {
        "threshold": repr(record["threshold"]),
        "threshold_method": str(record["threshold_method"]),
        "threshold_params": json.dumps(record["threshold_params"], sort_keys=True),
        "pipeline_run_id": str(record["pipeline_run_id"]),
        "data_path": str(record["data_path"]),
        "data_span": str(record["data_span"]),
        "schema_digest": str(record["schema_digest"]),
    }
    tags.update({f"metrics.{k}": repr(v) for k, v in record["metrics"].items()})
    return tags


# --------------------------------------------------------------------- executor


class Executor(pusher_executor.Executor):
    """Atomic filesystem push + MLflow registration (see module docstring)."""

    def Do(self, input_dict: Dict[str, List[types.Artifact]],
           output_dict: Dict[str, List[types.Artifact]],
           exec_properties: Dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        custom = json.loads(exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY)
                            or "null") or {}
        registry = custom.get("registry")
        if registry:
            model_push.set_string_custom_property(PROP_URI, registry["uri"])
            model_push.set_string_custom_property(PROP_NAME, registry["name"])
            if registry.get("manifest"):
                model_push.set_string_custom_property(PROP_MANIFEST, registry["manifest"])
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        model_path = self.GetModelPath(input_dict)
        version, serving_path = self._push(model_path, exec_properties)
        logging.info("Model written atomically to serving path %s.", serving_path)
        # Archive copy in the artifact, as the stock Pusher does.
        io_utils.copy_dir(model_path, model_push.uri)
        self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=version)
        if registry:
            self._hand_off(registry, input_dict, model_push, serving_path, version)

    def _push(self, model_path: str, exec_properties: Dict[str, Any]) -> Tuple[str, str]:
        dest = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], dest)
        if dest.WhichOneof("destination") != "filesystem":
            raise NotImplementedError(f"push destination {dest.WhichOneof('destination')}")
        fs = dest.filesystem
        if fs.versioning not in (pusher_pb2.Versioning.AUTO,
                                 pusher_pb2.Versioning.UNIX_TIMESTAMP):
            raise NotImplementedError(f"versioning {fs.versioning}")
        if "://" in fs.base_directory:
            return _push_remote(model_path, fs.base_directory)
        return push_atomically(model_path, fs.base_directory)

    def _pipeline_run_id(self) -> Optional[str]:
        ctx = getattr(self, "_context", None)
        return getattr(ctx, "pipeline_run_id", None) if ctx is not None else None

    def _hand_off(self, registry: Dict[str, Any], input_dict, model_push: types.Artifact,
                  serving_path: str, version: str) -> None:
        """Registers the pushed version; never raises (the push is already done)."""
        entry: Dict[str, Any] = {"version": None, "registered": False, "error": None}
        champion, champion_known = None, False
        try:
            # CheckBlessing passed: blessed, unless no blessing input was given at all.
            blessed = bool(input_dict.get(standard_component_specs.MODEL_BLESSING_KEY))
            entry.update(version_record(input_dict, serving_path, version,
                                        registry.get("data_path"), self._pipeline_run_id(),
                                        blessed=blessed))
            from components.registry import client

            reg = client.register_version(
                uri=registry["uri"], name=registry["name"], saved_model_dir=serving_path,
                serving_version=version, blessed=entry["blessed"],
                tags=mlflow_tags(entry),
                metrics=dict(entry["metrics"], threshold=entry["threshold"]),
                params={"threshold_method": entry["threshold_method"],
                        "threshold_params": json.dumps(entry["threshold_params"]),
                        "data_path": entry["data_path"], "data_span": entry["data_span"],
                        "schema_digest": entry["schema_digest"],
                        "pipeline_run_id": entry["pipeline_run_id"]},
                artifact_location=registry.get("artifact_location"),
                description=f"pushed to {serving_path}")
            entry.update(version=reg.version, registered=True, model_uri=reg.model_uri,
                         mlflow_run_id=reg.run_id, registry_source=reg.source)
            champion, champion_known = reg.champion, True
            model_push.set_string_custom_property(PROP_VERSION, reg.version)
            if reg.champion is not None:
                model_push.set_string_custom_property(PROP_CHAMPION, reg.champion)
            logging.info("Registered %s as version %s of '%s' in %s (champion: %s).",
                         serving_path, reg.version, registry["name"], registry["uri"],
                         reg.champion)
        except Exception as e:  # noqa: BLE001 - the pushed model must survive any failure
            message = f"{type(e).__name__}: {e}".splitlines()[0][:1000]
            entry["error"] = message
            model_push.set_string_custom_property(PROP_ERROR, message)
            logging.exception("Registry handoff failed; the model stays pushed at %s",
                              serving_path)
        if registry.get("manifest"):
            try:
                from components.registry import manifest

                manifest.record(registry["manifest"], registry["uri"], registry["name"],
                                entry, champion, champion_known)
            except Exception as e:  # noqa: BLE001
                message = f"registry.json: {type(e).__name__}: {e}".splitlines()[0][:1000]
                prior = model_push.get_string_custom_property(PROP_ERROR)
                model_push.set_string_custom_property(
                    PROP_ERROR, f"{prior}; {message}" if prior else message)
                logging.exception("Could not update %s", registry["manifest"])
