"""What must hold for an --output after any run, failed or not: what is served,
registry.json and MLflow agree, and no partial version is served."""
import os

from components.model import layout
from components.registry import manifest
from tests.helpers.registry import champion_version, list_versions


def assert_consistent(out, name="anomaly_detector"):
    """Asserts the agreement; returns the served versions (oldest first)."""
    out = str(out)
    base = os.path.join(out, "serving_model", name)
    served = layout.versions(base)
    leftovers = [n for n in (os.listdir(base) if os.path.isdir(base) else [])
                 if not n.isdigit()]
    assert leftovers == [], f"not a version, left in {base}: {leftovers}"
    for v in served:  # each served version is whole, as pushed
        layout.verify_model_dir(os.path.join(base, v))
        assert layout.read_checksums(os.path.join(base, v)) is not None
    data = manifest.read(os.path.join(out, manifest.MANIFEST_FILE)) or {"versions": []}
    recorded = [e["serving_version"] for e in data["versions"]]
    assert sorted(recorded, key=int) == served, (served, data)
    for e in data["versions"]:
        assert e["saved_model_path"] == os.path.join(base, e["serving_version"])
    uri = "sqlite:///" + os.path.join(out, "mlflow.db")
    in_mlflow = ([v["tags"]["serving_version"] for v in list_versions(uri, name)]
                 if os.path.exists(os.path.join(out, "mlflow.db")) else [])
    assert sorted(in_mlflow, key=int) == served, (in_mlflow, served)
    if served:
        assert data["champion"] == champion_version(uri, name)
        assert data["champion_saved_model_path"] == os.path.join(base, served[-1])
    return served
