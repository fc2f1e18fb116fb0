"""Publishing a model directory as `<base>/<version>/`, atomically (TFX-free).

The model is copied to `<base>/.tmp-<version>` (with `checksums.json`, the
sha256 of every file) and then `os.rename`d to `<base>/<version>`, so a reader
polling `serving_model/` (TF Serving, `anomaly-pipeline score`) never sees a
partial version. `stage` and `commit` are the two halves: the Pusher records
the version in registry.json and MLflow between them (publish.py). TF Serving ignores the
non-numeric `.tmp-*` name. A version number already taken is bumped instead of
silently skipping the push. Remote base directories (gs://) have no atomic
rename: there the stock Pusher's order is kept, saved_model.pb last.
"""
import errno
import os
import shutil
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from components.model import layout

TMP_PREFIX = ".tmp-"


def _copy_tree(src: str, dst: str) -> None:
    """Copies `src` into the existing empty dir `dst`, saved_model.pb last."""
    for root, dirs, files in os.walk(src):
        rel = os.path.relpath(root, src)
        target = os.path.join(dst, rel) if rel != "." else dst
        os.makedirs(target, exist_ok=True)
        for name in sorted(files, key=lambda n: n == layout.SAVED_MODEL_FILE):
            shutil.copy2(os.path.join(root, name), os.path.join(target, name))


def _fsync_tree(path: str) -> None:
    for root, _, files in os.walk(path):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def stage(src: str, base_dir: str, version: Optional[int] = None,
          source: Optional[Dict[str, Any]] = None,
          copy_tree: Callable[[str, str], None] = _copy_tree,
          clock: Callable[[], float] = time.time) -> Tuple[str, str]:
    """Copies the SavedModel `src` to `<base_dir>/.tmp-<version>/`, not yet published.

    Returns (version, temporary path). The directory is created exclusively (a
    version taken, or being written, is bumped), gets `checksums.json` (sha256 of
    every file, and `source`: where the model came from) and is fsynced. On
    failure it is removed and nothing is left.
    """
    os.makedirs(base_dir, exist_ok=True)
    v = int(clock()) if version is None else int(version)
    for _ in range(1000):
        final = os.path.join(base_dir, str(v))
        tmp = os.path.join(base_dir, f"{TMP_PREFIX}{v}")
        if os.path.exists(final):
            v += 1
            continue
        try:
            os.mkdir(tmp)
        except FileExistsError:  # another push is writing this version
            v += 1
            continue
        try:
            copy_tree(src, tmp)
            layout.write_checksums(tmp, source)
            _fsync_tree(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return str(v), tmp
    raise RuntimeError(f"could not find a free version number under {base_dir}")


def commit(tmp: str, final: str) -> None:
    """Publishes a staged version: one rename, then the directory is fsynced."""
    if os.path.exists(final):
        raise FileExistsError(errno.EEXIST, "version already published", final)
    os.rename(tmp, final)
    base_dir = os.path.dirname(final)
    dir_fd = os.open(base_dir, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def push_atomically(src: str, base_dir: str, version: Optional[int] = None,
                    copy_tree: Callable[[str, str], None] = _copy_tree,
                    clock: Callable[[], float] = time.time,
                    source: Optional[Dict[str, Any]] = None) -> Tuple[str, str]:
    """`stage` then `commit`: `<base_dir>/<version>/` appears whole or not at all.

    Returns (version, path). A version number lost to a concurrent push is bumped.
    """
    v = None if version is None else int(version)
    for _ in range(1000):
        staged_version, tmp = stage(src, base_dir, v, source, copy_tree, clock)
        final = os.path.join(base_dir, staged_version)
        try:
            commit(tmp, final)
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(e, FileExistsError) or e.errno in (errno.ENOTEMPTY, errno.EEXIST):
                v = int(staged_version) + 1  # lost a race for this version number
                continue
            raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return staged_version, final
    raise RuntimeError(f"could not find a free version number under {base_dir}")


def leftovers(base_dir: str) -> List[str]:
    """Versions of `.tmp-<version>` directories under `base_dir` (a push that never
    finished; under the output lock, no push is under way)."""
    if not os.path.isdir(base_dir):
        return []
    return sorted(n[len(TMP_PREFIX):] for n in os.listdir(base_dir)
                  if n.startswith(TMP_PREFIX))


def tmp_dir(base_dir: str, version: str) -> str:
    return os.path.join(base_dir, f"{TMP_PREFIX}{version}")


def push_remote(src: str, base_dir: str) -> Tuple[str, str]:
    """The stock Pusher's order for filesystems without atomic rename (gs://, s3://):
    every file, then saved_model.pb last."""
    import tensorflow as tf

    v = int(time.time())
    while tf.io.gfile.exists(os.path.join(base_dir, str(v))):
        v += 1
    dst = os.path.join(base_dir, str(v))
    last = None
    for dirpath, _, files in tf.io.gfile.walk(src):
        rel = os.path.relpath(dirpath, src)
        target = dst if rel == "." else os.path.join(dst, rel)
        tf.io.gfile.makedirs(target)
        for name in files:
            if rel == "." and name == layout.SAVED_MODEL_FILE:
                last = (os.path.join(dirpath, name), os.path.join(target, name))
                continue
            tf.io.gfile.copy(os.path.join(dirpath, name), os.path.join(target, name),
                             overwrite=True)
    if last is not None:
        tf.io.gfile.copy(*last, overwrite=True)
    return str(v), dst
