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
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True, default=str)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    return data
