"""Reading the MLflow registry back in tests (the pipeline itself only writes to it)."""
from typing import Any, Dict, List, Optional


def list_versions(uri: str, name: str) -> List[Dict[str, Any]]:
    """Every version of `name` (oldest first) with its tags and aliases."""
    from components.registry import client

    with client._local_store(uri):
        mlflow_client = client._client(uri)
        found = mlflow_client.search_model_versions(f"name='{name}'")
        # Search results carry no aliases: read each version.
        versions = [mlflow_client.get_model_version(name, mv.version) for mv in found]
    return sorted(({"version": str(mv.version), "tags": dict(mv.tags),
                    "aliases": list(mv.aliases), "source": mv.source, "run_id": mv.run_id}
                   for mv in versions), key=lambda v: int(v["version"]))


def champion_version(uri: str, name: str) -> Optional[str]:
    from components.registry import client

    with client._local_store(uri):
        mv = client._alias_version(client._client(uri), name, client.CHAMPION)
    return str(mv.version) if mv is not None else None
