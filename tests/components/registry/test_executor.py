"""The registry pusher's executor without the DAG: a registry that fails never
loses the pushed model (the version is on disk, the PushedModel artifact carries
`registry_error`, registry.json records the error, and the run summary,
`pipeline.summary.registry_summary`, shows it); registration gets the version's fields."""
import json
import os
from unittest import mock

import pytest

from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from components.registry import executor as registry_executor
from components.registry import manifest
from pipeline import summary as results
from tests.helpers.savedmodels import fake_model_dir as _fake_saved_model
from tests.helpers.savedmodels import inventory as _inventory


def _artifacts(tmp_path, blessed=True):
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "Evaluator" / "thresholded_model" / "7")
    _fake_saved_model(os.path.join(model.uri, "Format-Serving"))
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "Evaluator" / "blessing" / "7")
    os.makedirs(blessing.uri)
    blessing.set_int_custom_property("blessed", 1 if blessed else 0)
    evaluation = standard_artifacts.ModelEvaluation()
    evaluation.uri = str(tmp_path / "Evaluator" / "evaluation" / "7")
    os.makedirs(evaluation.uri)
    with open(os.path.join(evaluation.uri, "evaluation.json"), "w") as f:
        json.dump({"metrics": {"roc_auc": 0.93, "f1": 0.5, "error_stats": {"mean": 1}}}, f)
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "Pusher" / "pushed_model" / "8")
    os.makedirs(pushed.uri)
    inputs = {"model": [model], "model_blessing": [blessing], "evaluation": [evaluation]}
    return inputs, {"pushed_model": [pushed]}, pushed


def _exec_properties(tmp_path):
    dest = pusher_pb2.PushDestination(filesystem=pusher_pb2.PushDestination.Filesystem(
        base_directory=str(tmp_path / "out" / "serving_model" / "m")))
    registry = {"uri": "sqlite:///" + str(tmp_path / "out" / "mlflow.db"), "name": "m",
                "manifest": str(tmp_path / "out" / "registry.json"),
                "artifact_location": str(tmp_path / "out" / "mlruns"),
                "data_path": "/data/x.csv"}
    return {"push_destination": proto_utils.proto_to_json(dest),
            "custom_config": json.dumps({"registry": registry})}


@pytest.fixture(autouse=True)
def _fake_models_pass_the_model_check():
    # fake_model_dir's saved_model.pb is random bytes (no TensorFlow needed here);
    # the check itself is tested in tests/components/model/test_layout_checks.py.
    with mock.patch.object(registry_executor.layout, "verify_model_dir"):
        yield


class _Pushed:
    """What pipeline.results reads: an MLMD artifact's custom properties."""

    def __init__(self, artifact):
        self.custom_properties = artifact.mlmd_artifact.custom_properties


def test_registry_failure_keeps_the_pushed_model_and_reports_it(tmp_path):
    inputs, outputs, pushed = _artifacts(tmp_path)
    props = _exec_properties(tmp_path)
    from components.registry import client

    with mock.patch.object(client, "register_version",
                           side_effect=RuntimeError("tracking server unreachable")) as reg:
        registry_executor.Executor().Do(inputs, outputs, props)
    assert reg.call_count == 1
    assert pushed.get_int_custom_property("pushed") == 1
    dest = pushed.get_string_custom_property("pushed_destination")
    assert os.path.exists(os.path.join(dest, "saved_model.pb"))
    published = _inventory(dest)
    assert published.pop("checksums.json") > 0  # written at push, checked at load
    assert published == _inventory(os.path.join(inputs["model"][0].uri, "Format-Serving"))
    error = pushed.get_string_custom_property(registry_executor.PROP_ERROR)
    assert "RuntimeError: tracking server unreachable" in error
    data = manifest.read(str(tmp_path / "out" / "registry.json"))
    assert data["champion"] is None
    (entry,) = data["versions"]
    assert entry["registered"] is False and entry["version"] is None
    assert "tracking server unreachable" in entry["error"]
    assert entry["saved_model_path"] == dest and entry["threshold"] == 1.5
    assert entry["metrics"] == {"roc_auc": 0.93, "f1": 0.5}
    summary = results.registry_summary(_Pushed(pushed))
    assert summary["version"] is None and "unreachable" in summary["error"]
    assert summary["uri"].startswith("sqlite:///") and summary["name"] == "m"


def test_registration_gets_the_version_fields(tmp_path):
    inputs, outputs, pushed = _artifacts(tmp_path)
    from components.registry import client

    fake = client.Registration(name="m", version="4", model_uri="models:/m/4", run_id="r",
                               source="file:///x", champion="4")
    with mock.patch.object(client, "register_version", return_value=fake) as reg:
        registry_executor.Executor().Do(inputs, outputs, _exec_properties(tmp_path))
    kwargs = reg.call_args.kwargs
    assert kwargs["name"] == "m" and kwargs["blessed"] is True
    assert kwargs["tags"]["threshold"] == "1.5" and kwargs["tags"]["threshold_method"] == "mean_std"
    assert kwargs["tags"]["metrics.roc_auc"] == "0.93"
    assert kwargs["tags"]["data_path"] == "/data/x.csv"
    # Registered from the staged copy, before it is renamed to the path it is tagged with.
    dest = pushed.get_string_custom_property("pushed_destination")
    assert kwargs["saved_model_path"] == dest
    assert kwargs["saved_model_dir"] == os.path.join(os.path.dirname(dest),
                                                     ".tmp-" + os.path.basename(dest))
    data = manifest.read(str(tmp_path / "out" / "registry.json"))
    assert data["champion"] == "4" and data["versions"][0]["champion"] is True
    summary = results.registry_summary(_Pushed(pushed))
    assert summary["version"] == "4" and summary["champion"] == "4" and "error" not in summary


def test_not_blessed_is_not_pushed_nor_registered(tmp_path):
    inputs, outputs, pushed = _artifacts(tmp_path, blessed=False)
    from components.registry import client

    with mock.patch.object(client, "register_version") as reg:
        registry_executor.Executor().Do(inputs, outputs, _exec_properties(tmp_path))
    assert reg.call_count == 0
    assert pushed.get_int_custom_property("pushed") == 0
    assert not os.path.exists(tmp_path / "out" / "serving_model" / "m")
    assert not os.path.exists(tmp_path / "out" / "registry.json")
    summary = results.registry_summary(_Pushed(pushed))
    assert summary["version"] is None and "error" not in summary


def test_manifest_keeps_the_champion_when_the_registry_cannot_be_asked(tmp_path):
    path = str(tmp_path / "registry.json")
    manifest.record(path, "sqlite:///x", "m", {"version": "1", "serving_version": "10"}, "1", True)
    manifest.record(path, "sqlite:///x", "m", {"version": None, "serving_version": "11",
                                               "error": "boom"}, None, False)
    data = manifest.read(path)
    assert data["champion"] == "1"
    assert [v["champion"] for v in data["versions"]] == [True, False]
