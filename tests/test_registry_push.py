"""The registry pusher's executor without the DAG: atomic push, failure handling.

- A reader polling serving_model/<name>/ while a (deliberately slow) push runs
  never sees a version directory without saved_model.pb or with partial
  variables; the same reader does catch a plain, non-atomic copy (so the check
  has teeth).
- A registry that fails never loses the pushed model: the version is on disk,
  the PushedModel artifact carries `registry_error`, registry.json records the
  error, and the run summary (`pipeline.results.registry_summary`) shows it.
"""
import json
import os
import threading
import time
from unittest import mock

import pytest
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from components.registry import executor as registry_executor
from components.registry import manifest
from pipeline import results

VARIABLES = "variables/variables.data-00000-of-00001"


def _fake_saved_model(path, size=256 * 1024):
    os.makedirs(os.path.join(path, "variables"))
    os.makedirs(os.path.join(path, "assets"))
    with open(os.path.join(path, VARIABLES), "wb") as f:
        f.write(os.urandom(size))
    with open(os.path.join(path, "variables", "variables.index"), "wb") as f:
        f.write(os.urandom(1024))
    with open(os.path.join(path, "assets", "threshold.json"), "w") as f:
        json.dump({"threshold": 1.5, "method": "mean_std", "params": {"k": 3.0}}, f)
    with open(os.path.join(path, "assets", "model_metadata.json"), "w") as f:
        json.dump({"features": ["a", "b"], "label_column": None}, f)
    with open(os.path.join(path, "saved_model.pb"), "wb") as f:
        f.write(os.urandom(4096))
    return path


def _inventory(path):
    out = {}
    for root, _, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            out[os.path.relpath(full, path)] = os.path.getsize(full)
    return out


def _slow_copy(src, dst, piece=16 * 1024, pause=0.002):
    """Copies file by file, in small pieces, saved_model.pb first: worst case for readers."""
    for root, _, files in os.walk(src):
        target = os.path.join(dst, os.path.relpath(root, src))
        os.makedirs(target, exist_ok=True)
        for name in sorted(files, key=lambda n: n != "saved_model.pb"):
            with open(os.path.join(root, name), "rb") as fin, \
                    open(os.path.join(target, name), "wb") as fout:
                while True:
                    block = fin.read(piece)
                    if not block:
                        break
                    fout.write(block)
                    fout.flush()
                    time.sleep(pause)


class _Reader(threading.Thread):
    """Polls base_dir like a model server: every numeric dir must be complete."""

    def __init__(self, base_dir, expected):
        super().__init__(daemon=True)
        self.base_dir, self.expected = base_dir, expected
        self.stop = threading.Event()
        self.violations, self.seen_versions, self.seen_tmp = [], set(), False

    def run(self):
        while not self.stop.is_set():
            try:
                names = os.listdir(self.base_dir)
            except FileNotFoundError:
                names = []
            for name in names:
                if name.startswith(registry_executor.TMP_PREFIX):
                    self.seen_tmp = True
                if not name.isdigit():
                    continue
                self.seen_versions.add(name)
                found = _inventory(os.path.join(self.base_dir, name))
                if found != self.expected:
                    self.violations.append((name, found))
            time.sleep(0.0005)


def _watch(base_dir, src, publish):
    reader = _Reader(base_dir, _inventory(src))
    reader.start()
    try:
        result = publish()
    finally:
        time.sleep(0.01)
        reader.stop.set()
        reader.join(5)
    return reader, result


def test_push_is_atomic_for_a_polling_reader(tmp_path):
    src = _fake_saved_model(str(tmp_path / "model"))
    base = str(tmp_path / "serving_model" / "m")
    reader, (version, path) = _watch(base, src, lambda: registry_executor.push_atomically(
        src, base, version=1700000000, copy_tree=_slow_copy))
    assert reader.seen_tmp, "the copy was too fast to observe; the test proves nothing"
    assert reader.violations == []
    assert reader.seen_versions == {"1700000000"}
    assert version == "1700000000" and path == os.path.join(base, "1700000000")
    assert _inventory(path) == _inventory(src)
    assert os.listdir(base) == ["1700000000"]  # the temporary directory is gone


def test_the_reader_catches_a_plain_copy(tmp_path):
    src = _fake_saved_model(str(tmp_path / "model"))
    base = str(tmp_path / "serving_model" / "m")
    os.makedirs(base)
    reader, _ = _watch(base, src, lambda: _slow_copy(src, os.path.join(base, "1700000000")))
    assert reader.violations, "a non-atomic copy must be visible half-written"


def test_taken_version_is_bumped_and_failed_copy_publishes_nothing(tmp_path):
    src = _fake_saved_model(str(tmp_path / "model"))
    base = str(tmp_path / "serving")
    v1, _ = registry_executor.push_atomically(src, base, version=100)
    v2, _ = registry_executor.push_atomically(src, base, version=100)
    assert (v1, v2) == ("100", "101")

    def broken(a, b):
        _slow_copy(a, b)
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        registry_executor.push_atomically(src, base, version=200, copy_tree=broken)
    assert sorted(os.listdir(base)) == ["100", "101"]


# --------------------------------------------------------------------- the executor


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
    assert _inventory(dest) == _inventory(os.path.join(inputs["model"][0].uri, "Format-Serving"))
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
    assert kwargs["saved_model_dir"] == pushed.get_string_custom_property("pushed_destination")
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
