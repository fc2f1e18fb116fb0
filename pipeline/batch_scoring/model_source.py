"""Which model `score` uses: a model directory, a serving_model/<name> directory
(its newest version), or a registry URI `models:/<name>@<alias>` / `models:/<name>/<version>`."""
from typing import Any, Dict, Optional, Tuple
import os

from components.errors import InputError
from components.model import layout


def resolve_model(model: str, registry_uri: Optional[str], download_dir: str
                  ) -> Tuple[str, Optional[Dict[str, Any]]]:
    """(SavedModel dir, registry record or None) for a directory or a models:/ URI.

    The directory is checked before any work (layout.verify_model_dir): a broken
    model is an InputError naming the broken part."""
    if not model.startswith("models:/"):
        model_dir = layout.resolve_model_dir(model)
        layout.verify_model_dir(model_dir)
        return model_dir, None
    uri = registry_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise InputError(path=model, problem="a registry URI needs the registry: pass "
                                             "--registry-uri (e.g. sqlite:///runs/mlflow.db) "
                                             "or set MLFLOW_TRACKING_URI")
    from components.registry import client

    try:
        model_dir, info = client.resolve(uri, model, download_dir=download_dir)  # verified
    except client.RegistryError as e:
        raise InputError(path=model, problem=f"{e} in {uri}") from None
    info["uri"] = uri
    return model_dir, info
