"""components/registry/client.py against a real MLflow registry (SQLite in a temp dir).

The champion alias moves only to a blessed version newer than the current
champion; a registered model loads with mlflow.pyfunc and scores like the
SavedModel; `resolve` falls back to the registry's own copy when the pushed
directory is gone; nothing is written to the working directory.
"""
import os
import shutil

import numpy as np
import pandas as pd
import pytest

from components.registry import client
from components.model.scorer import SavedModelScorer

from tests.helpers.savedmodels import make_rows, make_saved_model
from tests.helpers import registry as registry_helpers

FEATURES = ["a", "b", "c", "d"]


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    root = tmp_path_factory.mktemp("registry")
    out = root / "out"
    uri = "sqlite:///" + str(out / "mlflow.db")
    models = {v: make_saved_model(str(out / "serving_model" / "m" / v), FEATURES,
                                  threshold=1.0 + int(v) % 7, seed=int(v))
              for v in ("100", "90", "110", "120")}
    cwd = root / "cwd"
    cwd.mkdir()
    before = os.getcwd()
    os.chdir(cwd)
    try:
        regs = {}
        for v, blessed in (("100", True), ("90", True), ("110", False), ("120", True)):
            regs[v] = client.register_version(
                uri, "m", models[v], serving_version=v, blessed=blessed,
                tags={"threshold": str(1.0 + int(v) % 7)}, metrics={"roc_auc": 0.9},
                params={"threshold_method": "mean_std"},
                artifact_location=str(out / "mlruns"))
            regs[v + "-champion-after"] = registry_helpers.champion_version(uri, "m")
    finally:
        os.chdir(before)
    return {"uri": uri, "out": out, "models": models, "regs": regs, "cwd": cwd}


def test_champion_moves_only_to_newer_blessed_versions(registry):
    regs = registry["regs"]
    assert [regs[v].version for v in ("100", "90", "110", "120")] == ["1", "2", "3", "4"]
    assert regs["100-champion-after"] == "1"   # first blessed version
    assert regs["90-champion-after"] == "1"    # blessed but older serving version
    assert regs["110-champion-after"] == "1"   # newer but not blessed
    assert regs["120-champion-after"] == "4"   # newer and blessed
    versions = registry_helpers.list_versions(registry["uri"], "m")
    assert [v["aliases"] for v in versions] == [[], [], [], ["champion"]]
    assert versions[2]["tags"]["blessed"] == "false"
    assert versions[3]["tags"]["saved_model_path"] == registry["models"]["120"]
    assert versions[3]["tags"]["serving_version"] == "120"


def test_nothing_written_to_the_working_directory(registry):
    assert os.listdir(registry["cwd"]) == []
    assert os.path.isdir(registry["out"] / "mlruns")


def test_registered_pyfunc_scores_like_the_savedmodel(registry, tmp_path, monkeypatch):
    import mlflow.pyfunc

    monkeypatch.chdir(tmp_path)  # mlflow.pyfunc.load_model creates ./mlruns
    src = registry_helpers.list_versions(registry["uri"], "m")[3]["source"]
    model = mlflow.pyfunc.load_model(src)
    x, label = make_rows(300, FEATURES, seed=9)
    frame = pd.DataFrame(x[:, ::-1], columns=FEATURES[::-1])  # any column order
    frame["label"] = label                                    # extra columns ignored
    got = model.predict(frame)
    want = SavedModelScorer(registry["models"]["120"]).score_matrix(x.astype(np.float32))
    np.testing.assert_array_equal(got["reconstruction_error"].to_numpy(np.float32),
                                  want["reconstruction_error"])
    np.testing.assert_array_equal(got["is_anomaly"].to_numpy(), want["is_anomaly"].astype(int))
    # The logged signature declares every column predict returns (top_features too).
    declared = model.metadata.get_output_schema().input_names()
    assert list(got.columns) == declared == ["reconstruction_error", "is_anomaly", "top_features"]


def test_resolve_prefers_the_pushed_copy_then_downloads(registry, tmp_path):
    uri = registry["uri"]
    path, info = client.resolve(uri, "models:/m@champion")
    assert path == registry["models"]["120"] and info["version"] == "4"
    moved = str(tmp_path / "moved")
    shutil.move(registry["models"]["100"], moved)
    try:
        path, info = client.resolve(uri, "models:/m/1", download_dir=str(tmp_path / "dl"))
    finally:
        shutil.move(moved, registry["models"]["100"])
    assert path.startswith(str(tmp_path / "dl")) and path.endswith("artifacts/saved_model")
    assert info["version"] == "1"
    assert os.path.exists(os.path.join(path, "saved_model.pb"))


@pytest.mark.parametrize("uri,problem", [
    ("models:/m@nope", "no alias 'nope'"),
    ("models:/m/99", "no version 99"),
    ("models:/m", "expected models:/<name>@<alias>"),
    ("models:/other@champion", "no alias 'champion'"),
])
def test_resolve_errors_are_one_line(registry, uri, problem):
    with pytest.raises(client.RegistryError, match=problem) as e:
        client.resolve(registry["uri"], uri)
    assert "\n" not in str(e.value)


def test_signature_types_each_input_by_its_role():
    sig = client.signature(["amount", "n_items"], ["merchant", "ts"])
    cols = {c.name: (c.type.name, c.required) for c in sig.inputs.inputs}
    assert cols == {"amount": ("double", False), "n_items": ("double", False),
                    "merchant": ("string", False), "ts": ("string", False)}
    assert sig.outputs.input_names() == ["reconstruction_error", "is_anomaly", "top_features"]
