"""Publishing a blessed model so that `serving_model/`, registry.json and MLflow agree (TFX-free).

The Pusher (executor.py) calls `publish` holding the output lock, with SIGTERM
held off (components/faults.py). The steps:

1. repair what a push that never finished left (`repair`): `.tmp-<v>`
   directories, and the registry.json entry / MLflow version of such a `<v>`;
2. adopt: a version already published from this very model, or byte for byte
   the same files (an earlier attempt whose ML Metadata record failed, e.g. on a
   full disk or SIGTERM, then evaluated again), is completed and reported, not
   copied a second time;
3. stage the copy as `.tmp-<v>/` with checksums.json (push.stage);
4. register it in MLflow, tagged with the final path. A failure that is not a
   resource fault (a tracking server that does not answer) is recorded as the
   entry's `error` and the model is still published, as before; a full disk or
   a store that is not writable undoes the push instead;
5. record the entry in registry.json;
6. rename `.tmp-<v>` to `<v>` (push.commit).

A failure in 3-6 (SIGINT/SIGTERM included, when they could not be held off)
undoes what was done, newest first: no `<v>/`, no registry.json entry, no
MLflow version; then it is raised. So a numbered directory under
`serving_model/<name>/` always has its registry.json entry (and its MLflow
version, or the entry's `error` saying why not), and a version is served only
once it is recorded.
"""
import logging
import os
import shutil
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Tuple

from components import faults
from components.model import layout
from components.registry import manifest, push, record


@dataclass
class Published:
    version: str
    path: str
    entry: Dict[str, Any] = field(default_factory=dict)
    champion: Optional[str] = None
    adopted: bool = False
    repaired: List[str] = field(default_factory=list)


def _client():
    from components.registry import client  # MLflow: imported only when registering

    return client


def repair(base_dir: str, registry: Optional[Dict[str, Any]]) -> List[str]:
    """Removes what pushes that never finished left; returns what was done.

    Call it holding the output lock: then no push is under way, and every
    `.tmp-<v>` is a leftover (the push was killed). Its version was never
    served; a registry.json entry or MLflow version recorded for it goes too.
    """
    done = []
    for version in push.leftovers(base_dir):
        shutil.rmtree(push.tmp_dir(base_dir, version), ignore_errors=True)
        done.append(f"removed {push.tmp_dir(base_dir, version)}")
        if os.path.exists(os.path.join(base_dir, version)) or not registry:
            continue
        try:
            deleted = _client().delete_serving_version(
                registry["uri"], registry["name"], version, registry.get("artifact_location"))
            done += [f"deleted MLflow version {v} (never served)" for v in deleted]
        except Exception as e:  # noqa: BLE001 - repairing is best effort; say so
            logging.warning("could not check MLflow for the unfinished version %s: %s",
                            version, e)
        if registry.get("manifest") and manifest.drop(registry["manifest"], version):
            done.append(f"dropped the registry.json entry of {version} (never served)")
    for line in done:
        logging.warning("unfinished push: %s", line)
    return done


def find_published(base_dir: str, model_uri: str,
                   files: Optional[Dict[str, Any]] = None) -> Optional[Tuple[str, str]]:
    """(version, path) of a served version pushed from `model_uri`, or whose files are
    byte for byte `files` (layout.checksums of the model: the same model evaluated
    again after an attempt whose record failed), newest first."""
    for version in reversed(layout.versions(base_dir)):
        path = os.path.join(base_dir, version)
        try:
            sums = layout.read_checksums(path)
        except Exception:  # noqa: BLE001 - a broken record is not this model
            continue
        if sums and ((sums.get("source") or {}).get("model_uri") == model_uri
                     or (files is not None and sums.get("files") == files)):
            return version, path
    return None


def publish(model_path: str, base_dir: str, registry: Optional[Dict[str, Any]],
            describe: Callable[[str, str, str], Dict[str, Any]],
            source: Dict[str, Any], version: Optional[int] = None) -> Published:
    """Publishes `model_path` under `base_dir` (module docstring); returns what it did.

    `registry`: the Pusher's custom_config["registry"] (uri, name, manifest,
    artifact_location) or None. `describe(files_dir, final_path, version)`: the
    version's registry record (record.version_record). `source`: where the
    model came from (stored in checksums.json; `model_uri` identifies it).
    """
    repaired = repair(base_dir, registry)
    adopted = find_published(base_dir, source["model_uri"], layout.checksums(model_path))
    undo: List[Tuple[str, Callable[[], Any]]] = []
    try:
        if adopted:
            version_s, final = adopted
            files_dir = final
            logging.info("%s was already published as %s (an earlier attempt whose record "
                         "failed): recording it, not copying it again", model_path, final)
        else:
            version_s, files_dir = push.stage(model_path, base_dir, version, source)
            final = os.path.join(base_dir, version_s)
            undo.append((f"remove {files_dir}",
                         lambda: shutil.rmtree(files_dir, ignore_errors=True)))
        result = Published(version_s, final, adopted=bool(adopted), repaired=repaired)
        result.entry = {"version": None, "registered": False, "error": None}
        if registry:
            _record(registry, describe(files_dir, final, version_s), files_dir, final,
                    version_s, result, undo)
        if not adopted:
            push.commit(files_dir, final)
        return result
    except BaseException as e:
        logging.error("publishing %s failed (%s: %s); undoing: %s", model_path,
                      type(e).__name__, e, ", ".join(what for what, _ in reversed(undo))
                      or "nothing to undo")
        for what, step in reversed(undo):
            try:
                step()
            except Exception:  # noqa: BLE001 - keep undoing the rest
                logging.exception("could not %s", what)
        raise


def _record(registry: Dict[str, Any], entry: Dict[str, Any], files_dir: str, final: str,
            version: str, result: Published, undo: List) -> None:
    """Steps 4 and 5: MLflow, then registry.json (adds their undo steps)."""
    path = registry.get("manifest")
    prior = manifest.read(path) if path else None
    known = manifest.entry(prior, version) if result.adopted else None
    champion, champion_known = None, False
    if known is not None and known.get("registered"):
        entry = dict(known)
        champion, champion_known = prior.get("champion"), True
    else:
        entry.update(version=None, registered=False, error=None)
        client = _client()
        try:
            reg = client.register_version(
                uri=registry["uri"], name=registry["name"], saved_model_dir=files_dir,
                saved_model_path=final, serving_version=version, blessed=entry["blessed"],
                tags=record.mlflow_tags(entry),
                metrics=dict(entry["metrics"], threshold=entry["threshold"]),
                params={"threshold_method": entry["threshold_method"],
                        "threshold_params": _json(entry["threshold_params"]),
                        "data_path": entry["data_path"], "data_span": entry["data_span"],
                        "schema_digest": entry["schema_digest"],
                        "pipeline_run_id": entry["pipeline_run_id"]},
                artifact_location=registry.get("artifact_location"),
                description=f"pushed to {final}")
        except Exception as e:  # noqa: BLE001 - see the module docstring, step 4
            fault = faults.resource_fault(e)
            if fault is not None and client.is_local(registry["uri"]):
                raise
            entry["error"] = f"{type(e).__name__}: {e}".splitlines()[0][:1000]
            logging.exception("Registry handoff failed; the model is still published at %s",
                              final)
        else:
            undo.append((f"delete MLflow version {reg.version}",
                         lambda: client.unregister(registry["uri"], reg,
                                                   registry.get("artifact_location"))))
            entry.update(version=reg.version, registered=True, model_uri=reg.model_uri,
                         mlflow_run_id=reg.run_id, registry_source=reg.source)
            champion, champion_known = reg.champion, True
            logging.info("Registered %s as version %s of '%s' in %s (champion: %s).",
                         final, reg.version, registry["name"], registry["uri"], reg.champion)
    if path:
        data = manifest.record(path, registry["uri"], registry["name"], entry, champion,
                               champion_known)
        undo.append((f"restore {path}", lambda: manifest.restore(path, prior)))
        champion = data.get("champion")
    result.entry, result.champion = entry, champion


def _json(value) -> str:
    import json

    return json.dumps(value)
