"""`<output>/registry.json`: every pushed version and which one is champion.

For users without MLflow. One entry per push, oldest first, with the same
fields as the MLflow version's tags; `version` is the MLflow registry version
(null when registration failed: then `error` says why, and `champion` stays
what the registry says it is). Updated under a file lock and replaced
atomically, so readers never see a half-written file.
"""
import contextlib
import fcntl
import json
import os
from typing import Any, Dict, Iterator, Optional

MANIFEST_FILE = "registry.json"


@contextlib.contextmanager
def _locked(path: str) -> Iterator[None]:
    """An exclusive lock on the manifest's directory (no lock file left behind)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def read(path: str) -> Optional[Dict[str, Any]]:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def record(path: str, registry_uri: str, name: str, entry: Dict[str, Any],
           champion: Optional[str], champion_known: bool) -> Dict[str, Any]:
    """Append `entry` and set the champion; returns the new manifest.

    `champion_known=False` (the registry could not be asked) keeps the
    champion the manifest already names.
    """
    with _locked(path):
        data = read(path) or {}
        versions = [v for v in data.get("versions", [])
                    if v.get("serving_version") != entry.get("serving_version")]
        versions.append(entry)
        if not champion_known:
            champion = data.get("champion")
        for v in versions:
            v["champion"] = champion is not None and v.get("version") == champion
        chosen = next((v for v in versions if v["champion"]), None)
        data = {
            "name": name,
            "registry_uri": registry_uri,
            "champion": champion,
            "champion_saved_model_path": chosen.get("saved_model_path") if chosen else None,
            "versions": versions,
        }
        _write(path, data)
    return data


def _write(path: str, data: Dict[str, Any]) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def restore(path: str, previous: Optional[Dict[str, Any]]) -> None:
    """Puts back the manifest as it was (`previous`; None: there was none)."""
    with _locked(path):
        if previous is None:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
        else:
            _write(path, previous)


def drop(path: str, serving_version: str, champion: Optional[str] = None,
         champion_known: bool = False) -> bool:
    """Removes the entry of `serving_version` (a push that never finished); True if
    there was one. `champion_known`: the registry's champion after the removal."""
    with _locked(path):
        data = read(path)
        if not data:
            return False
        versions = [v for v in data.get("versions", [])
                    if v.get("serving_version") != str(serving_version)]
        if len(versions) == len(data.get("versions", [])):
            return False
        if not champion_known:
            champion = data.get("champion")
            if not any(v.get("version") == champion for v in versions):
                champion = None
        for v in versions:
            v["champion"] = champion is not None and v.get("version") == champion
        chosen = next((v for v in versions if v["champion"]), None)
        data.update(champion=champion, versions=versions,
                    champion_saved_model_path=chosen.get("saved_model_path") if chosen else None)
        _write(path, data)
        return True


def entry(data: Optional[Dict[str, Any]], serving_version: str) -> Optional[Dict[str, Any]]:
    """The entry of `serving_version` in a manifest's data, or None."""
    for v in (data or {}).get("versions", []):
        if v.get("serving_version") == str(serving_version):
            return v
    return None
