"""The atomic push (components/registry/push.py): a reader polling
serving_model/<name>/ while a (deliberately slow) push runs never sees a version
directory without saved_model.pb or with partial variables; the same reader
does catch a plain, non-atomic copy (so the check has teeth)."""
import json
import os
import threading
import time

import pytest

from components.model import layout
from components.registry import push
from tests.helpers.savedmodels import VARIABLES, fake_model_dir as _fake_saved_model
from tests.helpers.savedmodels import inventory as _inventory

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
                if name.startswith(push.TMP_PREFIX):
                    self.seen_tmp = True
                if not name.isdigit():
                    continue
                self.seen_versions.add(name)
                found = _inventory(os.path.join(self.base_dir, name))
                if found.pop(layout.CHECKSUMS_FILE, None) is None or found != self.expected:
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
    reader, (version, path) = _watch(base, src, lambda: push.push_atomically(
        src, base, version=1700000000, copy_tree=_slow_copy))
    assert reader.seen_tmp, "the copy was too fast to observe; the test proves nothing"
    assert reader.violations == []
    assert reader.seen_versions == {"1700000000"}
    assert version == "1700000000" and path == os.path.join(base, "1700000000")
    published = _inventory(path)
    assert published.pop(layout.CHECKSUMS_FILE) > 0
    assert published == _inventory(src)
    assert sorted(layout.read_checksums(path)["files"]) == sorted(_inventory(src))
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
    v1, _ = push.push_atomically(src, base, version=100)
    v2, _ = push.push_atomically(src, base, version=100)
    assert (v1, v2) == ("100", "101")

    def broken(a, b):
        _slow_copy(a, b)
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        push.push_atomically(src, base, version=200, copy_tree=broken)
    assert sorted(os.listdir(base)) == ["100", "101"]
