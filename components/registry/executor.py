"""Registry pusher executor: the stock Pusher, made atomic and locked, plus the registry handoff.

Subclasses `tfx.components.pusher.executor.Executor` and reuses its
`CheckBlessing`, `GetModelPath`, `_MarkPushed` and `_MarkNotPushed` (the
tfx-addons HFPusher pattern). Differences from the stock `Do`:

1. The model is checked first (components/model/layout.py verify_model_dir):
   a broken one is never pushed.
2. Publishing (`publish.py`), holding the output lock (components/output_lock.py,
   re-entrant when the CLI's run already holds it; `lock_wait` seconds for
   another holder) with SIGTERM held off (components/faults.py): the version
   is staged as `.tmp-<v>/` with checksums.json, registered in MLflow
   (`client.py`) with its record (`record.py`), recorded in `registry.json`
   (`manifest.py`), then renamed into place; `champion` moves to it if it is
   the newest blessed version. A failure undoes all of it, except an MLflow
   failure that is not a resource fault (a server that does not answer): that
   is recorded on the PushedModel artifact (`registry_error`) and in
   registry.json, the model is still published, and the run summary shows it.
   A version already published from the same model (an attempt whose ML
   Metadata record failed) is recorded, not copied again.

custom_config = {"registry": {"uri", "name", "manifest", "artifact_location",
                              "data_path", "lock_dir", "lock_wait"}}
"""
import functools
import json
import logging
import os
from typing import Any, Dict, List, Optional, Tuple

from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

from components import faults, output_lock
from components.model import layout
from components.registry import publish, push, record

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
        base_dir = self._base_dir(exec_properties)
        # A broken model is never pushed (and a reader can check it the same way).
        if "://" not in model_path:
            layout.verify_model_dir(model_path)
        # Archive copy in the artifact, as the stock Pusher does; first, so that a
        # full disk stops the push before anything is served.
        io_utils.copy_dir(model_path, model_push.uri)
        describe = functools.partial(self._describe, registry or {}, input_dict)
        if "://" in base_dir:
            version, serving_path = push.push_remote(model_path, base_dir)
            self._MarkPushed(model_push, pushed_destination=serving_path, pushed_version=version)
            if registry:
                result = publish.Published(version, serving_path)
                publish._record(registry, describe(serving_path, serving_path, version),
                                serving_path, serving_path, version, result, [])
                self._set_registry(model_push, result)
            return
        source = {"model_uri": model_path, "pipeline_run_id": self._pipeline_run_id()}
        lock_dir = (registry or {}).get("lock_dir") or os.path.dirname(
            os.path.dirname(os.path.abspath(base_dir)))
        wait = float((registry or {}).get("lock_wait") or 0)
        with output_lock.hold(lock_dir, wait=wait,
                              command=f"Pusher of pipeline run {source['pipeline_run_id']}",
                              on_wait=functools.partial(_log_wait, lock_dir, wait)), \
                faults.deferred_signals():
            result = publish.publish(model_path, base_dir, registry, describe, source)
        logging.info("Model published at %s%s.", result.path,
                     " (adopted: pushed by an earlier attempt)" if result.adopted else "")
        self._MarkPushed(model_push, pushed_destination=result.path,
                         pushed_version=result.version)
        if registry:
            self._set_registry(model_push, result)

    def _base_dir(self, exec_properties: Dict[str, Any]) -> str:
        dest = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], dest)
        if dest.WhichOneof("destination") != "filesystem":
            raise NotImplementedError(f"push destination {dest.WhichOneof('destination')}")
        fs = dest.filesystem
        if fs.versioning not in (pusher_pb2.Versioning.AUTO,
                                 pusher_pb2.Versioning.UNIX_TIMESTAMP):
            raise NotImplementedError(f"versioning {fs.versioning}")
        return fs.base_directory

    def _pipeline_run_id(self) -> Optional[str]:
        ctx = getattr(self, "_context", None)
        return getattr(ctx, "pipeline_run_id", None) if ctx is not None else None

    def _describe(self, registry: Dict[str, Any], input_dict, files_dir: str,
                  serving_path: str, version: str) -> Dict[str, Any]:
        """The version's registry record (MLflow tags, registry.json entry)."""
        evaluation = _single(input_dict, EVALUATION_KEY)
        examples = _single(input_dict, EXAMPLES_KEY)
        schema = _single(input_dict, SCHEMA_KEY)
        return record.version_record(
            serving_path, version, registry.get("data_path"), self._pipeline_run_id(),
            evaluation_uri=evaluation.uri if evaluation is not None else None,
            examples_uri=examples.uri if examples is not None else None,
            data_span=_span(examples), schema_uri=schema.uri if schema is not None else None,
            model_dir=files_dir)

    @staticmethod
    def _set_registry(model_push: types.Artifact, result: "publish.Published") -> None:
        entry = result.entry
        if entry.get("registered") and entry.get("version") is not None:
            model_push.set_string_custom_property(PROP_VERSION, str(entry["version"]))
        if result.champion is not None:
            model_push.set_string_custom_property(PROP_CHAMPION, str(result.champion))
        if entry.get("error"):
            model_push.set_string_custom_property(PROP_ERROR, entry["error"])


def _log_wait(lock_dir: str, wait: float, holder) -> None:
    logging.warning("waiting up to %g s for the lock on %s: %s", wait, lock_dir,
                    output_lock.describe(holder))
