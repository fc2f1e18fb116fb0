"""Which model `score` uses: a model directory, a serving_model/<name> directory
(its newest version), or a registry URI `models:/<name>@<alias>` / `models:/<name>/<version>`."""
from typing import Any, Dict, Optional, Tuple
import os

from components.errors import InputError
from components.model import layout


def resolve_model(model: str, registry_uri: Optional[str], download_dir: str
                  ) -> Tuple[str, Optional[Dict[str, Any]]]:
    """(SavedModel dir, registry record or None) for a directory or a models:/ URI."""
    if not model.startswith("models:/"):
        return layout.resolve_model_dir(model), None
    uri = registry_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise InputError(path=model, problem="a registry URI needs the registry: pass "
                                             "--registry-uri (e.g. sqlite:///runs/mlflow.db) "
                                             "or set MLFLOW_TRACKING_URI")
    from components.registry import client

    try:
        model_dir, info = client.resolve(uri, model, download_dir=download_dir)
    except client.RegistryError as e:
        raise InputError(path=model, problem=f"{e} in {uri}") from None
    info["uri"] = uri
    return model_dir, info
