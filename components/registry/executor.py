"""Registry pusher executor: the stock Pusher, made atomic, plus the registry handoff.

Subclasses `tfx.components.pusher.executor.Executor` and reuses its
`CheckBlessing`, `GetModelPath`, `_MarkPushed` and `_MarkNotPushed` (the
tfx-addons HFPusher pattern). Differences from the stock `Do`:

1. Atomic push (`push.py`): a reader polling `serving_model/` never sees a
   partial version; a version number already taken is bumped.
2. Registry handoff, after the push, when `custom_config["registry"]` is set:
   the version is registered in MLflow (`client.py`) with its record
   (`record.py`: threshold and method, metrics, pipeline run id, data
   path/span, schema digest, SavedModel path), `champion` moves to it if it is
   the newest blessed version, and `registry.json` gets an entry
   (`manifest.py`). A registration failure never loses the pushed model: it
   is logged, recorded on the PushedModel artifact (`registry_error`) and in
   registry.json, and the run summary shows it.

custom_config = {"registry": {"uri", "name", "manifest", "artifact_location",
                              "data_path"}}
"""
import json
import logging
from typing import Any, Dict, List, Optional, Tuple

from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from components.registry import push, record

EVALUATION_KEY = "evaluation"
EXAMPLES_KEY = "examples"
SCHEMA_KEY = "schema"

# Custom properties of the PushedModel artifact (read by pipeline/summary.py).
PROP_URI = "registry_uri"
PROP_NAME = "registry_name"
PROP_VERSION = "registry_version"
PROP_CHAMPION = "registry_champion"
PROP_ERROR = "registry_error"
PROP_MANIFEST = "registry_manifest"


def _single(input_dict: Dict[str, List[types.Artifact]], key: str) -> Optional[types.Artifact]:
    arts = input_dict.get(key) or []
    return arts[0] if arts else None


def _span(examples: Optional[types.Artifact]) -> Optional[int]:
    if examples is None:
        return None
    try:
        return int(examples.span)
    except (AttributeError, TypeError, ValueError):
        return None


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
            return push.push_remote(model_path, fs.base_directory)
        return push.push_atomically(model_path, fs.base_directory)

    def _pipeline_run_id(self) -> Optional[str]:
        ctx = getattr(self, "_context", None)
        return getattr(ctx, "pipeline_run_id", None) if ctx is not None else None

    def _hand_off(self, registry: Dict[str, Any], input_dict, model_push: types.Artifact,
                  serving_path: str, version: str) -> None:
        """Registers the pushed version; never raises (the push is already done)."""
        entry: Dict[str, Any] = {"version": None, "registered": False, "error": None}
        champion, champion_known = None, False
        try:
            evaluation = _single(input_dict, EVALUATION_KEY)
            examples = _single(input_dict, EXAMPLES_KEY)
            schema = _single(input_dict, SCHEMA_KEY)
            entry.update(record.version_record(
                serving_path, version, registry.get("data_path"), self._pipeline_run_id(),
                evaluation_uri=evaluation.uri if evaluation is not None else None,
                examples_uri=examples.uri if examples is not None else None,
                data_span=_span(examples), schema_uri=schema.uri if schema is not None else None))
            from components.registry import client

            reg = client.register_version(
                uri=registry["uri"], name=registry["name"], saved_model_dir=serving_path,
                serving_version=version, blessed=entry["blessed"],
                tags=record.mlflow_tags(entry),
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
