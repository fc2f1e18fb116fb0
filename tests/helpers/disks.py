"""A small disk for full-disk tests: a tmpfs mounted by the test (root only), and ballast."""
import contextlib
import errno
import os
import subprocess
from typing import Iterator

import pytest


@contextlib.contextmanager
def small_disk(path, size: str = "8M") -> Iterator[str]:
    """Mounts a tmpfs of `size` at `path` for the block (skips the test when it cannot)."""
    path = str(path)
    os.makedirs(path, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {proc.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", path], capture_output=True)


def fill(directory, name: str = "ballast", leave: int = 0) -> str:
    """Writes a file until the disk of `directory` is full (but for about `leave`
    bytes); returns its path. Removing it frees the space again."""
    path = os.path.join(str(directory), name)
    block = b"\0" * 65536
    with open(path, "wb", buffering=0) as f:
        try:
            while True:
                free = os.statvfs(directory).f_bavail * os.statvfs(directory).f_frsize
                if free <= leave:
                    break
                f.write(block[:max(4096, min(len(block), free - leave))])
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
    return path
