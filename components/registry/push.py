"""Publishing a model directory as `<base>/<version>/`, atomically (TFX-free).

The model is copied to `<base>/.tmp-<version>` and then `os.rename`d to
`<base>/<version>`, so a reader polling `serving_model/` (TF Serving,
`anomaly-pipeline score`) never sees a partial version. TF Serving ignores the
non-numeric `.tmp-*` name. A version number already taken is bumped instead of
silently skipping the push. Remote base directories (gs://) have no atomic
rename: there the stock Pusher's order is kept, saved_model.pb last.
"""
import errno
import os
import shutil
import time
from typing import Callable, Optional, Tuple

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


def push_atomically(src: str, base_dir: str, version: Optional[int] = None,
                    copy_tree: Callable[[str, str], None] = _copy_tree,
                    clock: Callable[[], float] = time.time) -> Tuple[str, str]:
    """Copies the SavedModel `src` to `<base_dir>/<version>/` atomically.

    Returns (version, path). The copy goes to `<base_dir>/.tmp-<version>`
    (created exclusively, so two concurrent pushers never share it) and is
    renamed into place; a version already taken (or being written) is bumped.
    On failure the temporary directory is removed and nothing is published.
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
            _fsync_tree(tmp)
            if os.path.exists(final):
                raise FileExistsError(final)
            os.rename(tmp, final)
        except OSError as e:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(e, FileExistsError) or e.errno in (errno.ENOTEMPTY, errno.EEXIST):
                v += 1  # lost a race for this version number
                continue
            raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        dir_fd = os.open(base_dir, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return str(v), final
    raise RuntimeError(f"could not find a free version number under {base_dir}")


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
