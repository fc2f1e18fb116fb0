"""layout.verify_model_dir: every broken part of a model directory is an InputError
naming the path and the part; a sound one passes, with or without checksums.json."""
import json
import os
import shutil

import pytest

from components.errors import InputError
from components.model import layout
from tests.helpers.savedmodels import make_saved_model

FEATURES = ["a", "b", "c", "d"]
DATA = os.path.join("variables", "variables.data-00000-of-00001")


@pytest.fixture(scope="module")
def sound(tmp_path_factory):
    return make_saved_model(str(tmp_path_factory.mktemp("model") / "1"), FEATURES)


@pytest.fixture
def model(sound, tmp_path):
    path = str(tmp_path / "m")
    shutil.copytree(sound, path)
    return path


def _broken(path):
    with pytest.raises(InputError) as e:
        layout.verify_model_dir(path)
    text = str(e.value)
    assert "\n" not in text and "broken model" in text or "not found" in text, text
    return text


def test_a_sound_model_passes_with_and_without_checksums(model):
    assert layout.verify_model_dir(model)["features"] == FEATURES
    layout.write_checksums(model, {"model_uri": "/somewhere"})
    assert layout.verify_model_dir(model)["features"] == FEATURES
    assert layout.read_checksums(model)["source"] == {"model_uri": "/somewhere"}
    assert set(layout.read_checksums(model)["files"]) == set(layout.model_files(model))


def test_signatures_are_read_without_tensorflow_as_tensorflow_reads_them(model):
    from tensorflow.core.protobuf import saved_model_pb2

    raw = open(os.path.join(model, "saved_model.pb"), "rb").read()
    proto = saved_model_pb2.SavedModel.FromString(raw)
    expected = {name: {k: [d.size for d in v.tensor_shape.dim] for k, v in sig.inputs.items()}
                for name, sig in proto.meta_graphs[0].signature_def.items()}
    assert layout.signatures(raw) == expected
    assert expected["score_features"]["features"] == [-1, len(FEATURES)]


def test_truncated_variables_are_found_by_reading_them(model):
    path = os.path.join(model, DATA)
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    text = _broken(model)
    assert text.startswith(os.path.join(model, "variables") + ":") and "unreadable" in text


def test_truncated_variables_are_found_by_their_checksum(model):
    layout.write_checksums(model)
    path = os.path.join(model, DATA)
    data = open(path, "rb").read()
    open(path, "wb").write(data[:-10])
    text = _broken(model)
    assert text.startswith(path + ":") and "truncated" in text


def test_a_changed_byte_is_found_by_its_checksum(model):
    layout.write_checksums(model)
    path = os.path.join(model, layout.ASSETS_DIR, layout.THRESHOLD_FILE)
    text = open(path).read()
    open(path, "w").write(text.replace("1.0", "9.0", 1))
    assert _broken(model).startswith(path + ": broken model: sha256 differs")


@pytest.mark.parametrize("part", ["saved_model.pb", "variables/variables.index",
                                  "assets/model_metadata.json"])
def test_a_missing_file_is_named(model, part):
    os.remove(os.path.join(model, part))
    assert _broken(model).startswith(os.path.join(model, part) + ": broken model: missing")


def test_a_file_listed_in_the_checksums_but_gone_is_named(model):
    layout.write_checksums(model)
    os.remove(os.path.join(model, "fingerprint.pb"))
    assert "missing file (listed in checksums.json)" in _broken(model)


@pytest.mark.parametrize("content, needle", [
    ("{not json", "unparseable"),
    (json.dumps({"label_column": "y"}), "feature names"),
])
def test_unparseable_metadata_is_named(model, content, needle):
    path = os.path.join(model, "assets", "model_metadata.json")
    open(path, "w").write(content)
    text = _broken(model)
    assert text.startswith(path + ": broken model") and needle in text


def test_metadata_that_disagrees_with_the_signature_is_named(model):
    path = os.path.join(model, "assets", "model_metadata.json")
    json.dump({"features": FEATURES[:3]}, open(path, "w"))
    text = _broken(model)
    assert "saved_model.pb" in text and "takes 4 features" in text and "names 3" in text


def test_a_graph_that_is_not_a_saved_model_is_named(model):
    open(os.path.join(model, "saved_model.pb"), "wb").write(b"\x0f" * 64)
    text = _broken(model)
    assert "saved_model.pb: broken model" in text


def test_unreadable_checksums_are_named(model):
    open(os.path.join(model, layout.CHECKSUMS_FILE), "w").write("{")
    assert "checksums unreadable" in _broken(model)


def test_a_missing_directory_is_not_found(tmp_path):
    assert "not found" in _broken(str(tmp_path / "nothing"))
