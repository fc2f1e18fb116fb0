"""Publishing a version (components/registry/publish.py) when things fail: a full disk
(a real small tmpfs) while copying, while MLflow records it, while registry.json is
written; SIGTERM in the middle; the leftovers of a killed push; a push whose record
failed, pushed again. Afterwards a numbered version directory exists exactly when
registry.json (and MLflow) record it."""
import os
import signal
from unittest import mock

import pytest

from components import faults
from components.model import layout
from components.registry import client, manifest, publish, record
from tests.helpers.disks import fill, small_disk
from tests.helpers.savedmodels import fake_model_dir


def _registry(root):
    return {"uri": "sqlite:///" + os.path.join(root, "mlflow.db"), "name": "m",
            "manifest": os.path.join(root, "registry.json"),
            "artifact_location": os.path.join(root, "mlruns")}


def _describe(files_dir, final, version):
    return record.version_record(final, version, "/data.csv", "run-1", model_dir=files_dir)


def _registration(version="1", champion="1", previous=None):
    return client.Registration(name="m", version=version, model_uri=f"models:/m/{version}",
                               run_id="r" + version, source="file:///x", champion=champion,
                               previous_champion=previous)


def _publish(model, base, registry, uri="/model/a"):
    return publish.publish(model, base, registry, _describe, {"model_uri": uri})


def _state(base, registry):
    """(served versions, registry.json serving versions)."""
    data = manifest.read(registry["manifest"]) or {}
    return (layout.versions(base) if os.path.isdir(base) else [],
            [v["serving_version"] for v in data.get("versions", [])])


@pytest.fixture
def model(tmp_path):
    return fake_model_dir(str(tmp_path / "model"))


def test_a_sound_publish_records_then_serves_with_checksums(model, tmp_path):
    base, registry = str(tmp_path / "out" / "serving_model" / "m"), _registry(str(tmp_path / "out"))
    with mock.patch.object(client, "register_version", return_value=_registration()) as reg:
        result = _publish(model, base, registry)
    assert _state(base, registry) == ([result.version], [result.version])
    assert reg.call_args.kwargs["saved_model_path"] == result.path
    sums = layout.read_checksums(result.path)
    assert sums["source"] == {"model_uri": "/model/a"}
    assert set(sums["files"]) == set(layout.model_files(model))
    assert manifest.read(registry["manifest"])["champion"] == "1"


def test_a_full_disk_while_copying_publishes_nothing(model, tmp_path):
    with small_disk(tmp_path / "disk", "1M") as disk:
        base, registry = os.path.join(disk, "serving_model", "m"), _registry(disk)
        os.makedirs(base)
        fill(disk, leave=64 * 1024)  # the model is ~260 KB
        with mock.patch.object(client, "register_version") as reg:
            with pytest.raises(OSError) as e:
                _publish(model, base, registry)
        assert faults.resource_fault(e.value).kind == faults.DISK_FULL
        assert reg.call_count == 0
        assert os.listdir(base) == []  # no version, no .tmp- left
        assert not os.path.exists(registry["manifest"])


def test_a_full_disk_at_registry_json_undoes_mlflow_and_the_copy(model, tmp_path):
    with small_disk(tmp_path / "disk", "2M") as disk:
        base, registry = os.path.join(disk, "serving_model", "m"), _registry(disk)
        prior = {"name": "m", "champion": "1", "versions": [{"serving_version": "5",
                                                            "version": "1", "champion": True}]}
        manifest._write(registry["manifest"], prior)

        def register_and_fill_the_disk(**kwargs):
            fill(disk)
            return _registration("2", champion="2", previous="1")

        with mock.patch.object(client, "register_version",
                               side_effect=register_and_fill_the_disk), \
                mock.patch.object(client, "unregister") as unregister:
            with pytest.raises(OSError) as e:
                _publish(model, base, registry)
        assert faults.resource_fault(e.value).kind == faults.DISK_FULL
        assert unregister.call_count == 1 and unregister.call_args.args[1].version == "2"
        assert os.listdir(base) == []
        assert manifest.read(registry["manifest"]) == prior


def test_mlflows_local_store_full_undoes_the_push(model, tmp_path):
    base, registry = str(tmp_path / "serving_model" / "m"), _registry(str(tmp_path))
    full = RuntimeError("(sqlite3.OperationalError) database or disk is full")
    with mock.patch.object(client, "register_version", side_effect=full):
        with pytest.raises(RuntimeError, match="disk is full"):
            _publish(model, base, registry)
    assert _state(base, registry) == ([], [])


def test_sigterm_inside_the_push_waits_for_the_whole_push(model, tmp_path):
    base, registry = str(tmp_path / "serving_model" / "m"), _registry(str(tmp_path))

    def register_then_get_terminated(**kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # a scheduler stops the run here
        return _registration()

    def raise_terminated(signum, frame):
        raise faults.Terminated(signum)

    previous = signal.signal(signal.SIGTERM, raise_terminated)
    try:
        with mock.patch.object(client, "register_version",
                               side_effect=register_then_get_terminated):
            with pytest.raises(faults.Terminated):
                with faults.deferred_signals():
                    result = _publish(model, base, registry)
                assert _state(base, registry) == ([result.version], [result.version])
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert _state(base, registry) == ([result.version], [result.version])


def test_an_interrupt_that_is_not_held_off_undoes_the_push(model, tmp_path):
    base, registry = str(tmp_path / "serving_model" / "m"), _registry(str(tmp_path))
    with mock.patch.object(client, "register_version", return_value=_registration()), \
            mock.patch.object(manifest, "record", side_effect=faults.Terminated()), \
            mock.patch.object(client, "unregister") as unregister:
        with pytest.raises(faults.Terminated):
            _publish(model, base, registry)
    assert unregister.call_count == 1
    assert _state(base, registry) == ([], [])


def test_leftovers_of_a_killed_push_are_repaired_first(model, tmp_path):
    base, registry = str(tmp_path / "serving_model" / "m"), _registry(str(tmp_path))
    os.makedirs(os.path.join(base, ".tmp-123"))  # killed after recording, before the rename
    manifest.record(registry["manifest"], registry["uri"], "m",
                    {"serving_version": "123", "version": "7"}, "7", True)
    with mock.patch.object(client, "register_version", return_value=_registration("8", "8")), \
            mock.patch.object(client, "delete_serving_version", return_value=["7"]) as gone:
        result = _publish(model, base, registry)
    assert gone.call_args.args[2] == "123"
    assert any("123" in line for line in result.repaired)
    assert _state(base, registry) == ([result.version], [result.version])
    assert manifest.read(registry["manifest"])["champion"] == "8"


def test_a_push_whose_record_failed_is_adopted_not_copied_again(model, tmp_path):
    base, registry = str(tmp_path / "serving_model" / "m"), _registry(str(tmp_path))
    with mock.patch.object(client, "register_version", return_value=_registration()) as reg:
        first = _publish(model, base, registry)
        # ML Metadata never learnt of it (say its disk was full): the Pusher runs again.
        again = _publish(model, base, registry)
        # The same files evaluated again (a new artifact): adopted too.
        same = _publish(model, base, registry, uri="/model/a-again")
        with open(os.path.join(model, "assets", "threshold.json"), "a") as f:
            f.write(" ")  # another threshold: another model
        other = _publish(model, base, registry, uri="/model/b")
    assert reg.call_count == 2  # the adopted version is not registered twice
    assert again.adopted and (again.version, again.path) == (first.version, first.path)
    assert same.adopted and same.version == first.version
    assert again.entry["version"] == "1"
    assert not other.adopted and other.version != first.version
    assert _state(base, registry) == (sorted([first.version, other.version], key=int),
                                      [first.version, other.version])
