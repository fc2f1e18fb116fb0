"""The README's TensorBoard command, started for real, and the scalars it serves.

`<venv>/bin/tensorboard --logdir DIR --host 127.0.0.1 --port 0` (the OS picks
the port; TensorBoard prints "TensorBoard 2.16.2 at http://127.0.0.1:PORT/"),
then its HTTP API (tensorboard/plugins/scalar/scalars_plugin.py):
  GET /data/plugin/scalars/tags                     {run: {tag: {...}}}
  GET /data/plugin/scalars/scalars?run=R&tag=T      [[wall_time, step, value], ...]
"""
import contextlib
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Dict, Iterator, List, Sequence

START_TIMEOUT_S = 120


def _get(base: str, path: str, **params) -> bytes:
    url = base + path + ("?" + urllib.parse.urlencode(params) if params else "")
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.status == 200, (url, r.status)
        return r.read()


@contextlib.contextmanager
def tensorboard(logdir: str, *extra: str) -> Iterator[str]:
    """Within: the base URL of a TensorBoard serving `logdir` on 127.0.0.1."""
    exe = os.path.join(os.path.dirname(sys.executable), "tensorboard")  # what the README runs
    proc = subprocess.Popen([exe, "--logdir", logdir, "--host", "127.0.0.1", "--port", "0",
                             "--reload_interval", "1", *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output: List[str] = []
    found: Dict[str, str] = {}

    def read():
        for line in proc.stdout:
            output.append(line)
            m = re.search(r"(http://127\.0\.0\.1:\d+)/", line)
            if m and "base" not in found:
                found["base"] = m.group(1)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while "base" not in found:
            assert proc.poll() is None, "tensorboard exited:\n" + "".join(output)
            assert time.monotonic() < deadline, "tensorboard did not start:\n" + "".join(output)
            time.sleep(0.2)
        yield found["base"]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)
        if proc.returncode not in (0, -15):
            print("".join(output[-50:]), file=sys.stderr)


def scalars(base: str, runs: Sequence[str], tag: str = "epoch_loss",
            timeout: float = START_TIMEOUT_S) -> Dict[str, List[List[float]]]:
    """{run: [[wall_time, step, value], ...]} once every run lists `tag` (polls)."""
    deadline = time.monotonic() + timeout
    tags: Dict = {}
    while time.monotonic() < deadline:
        try:
            tags = json.loads(_get(base, "/data/plugin/scalars/tags"))
        except (urllib.error.URLError, ConnectionError):
            tags = {}
        if all(tag in tags.get(run, {}) for run in runs):
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"no {tag} for {list(runs)} within {timeout} s: tags={tags}")
    assert b"<html" in _get(base, "/").lower()  # the web app itself
    return {run: json.loads(_get(base, "/data/plugin/scalars/scalars", run=run, tag=tag))
            for run in runs}
