"""The MLflow registry in tests: reading it back (the pipeline itself only writes to it) and
`mlflow models serve` started and stopped by the test."""
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Any, Dict, List, Optional


def list_versions(uri: str, name: str) -> List[Dict[str, Any]]:
    """Every version of `name` (oldest first) with its tags and aliases."""
    from components.registry import client

    with client._local_store(uri):
        mlflow_client = client._client(uri)
        found = mlflow_client.search_model_versions(f"name='{name}'")
        # Search results carry no aliases: read each version.
        versions = [mlflow_client.get_model_version(name, mv.version) for mv in found]
    return sorted(({"version": str(mv.version), "tags": dict(mv.tags),
                    "aliases": list(mv.aliases), "source": mv.source, "run_id": mv.run_id}
                   for mv in versions), key=lambda v: int(v["version"]))


def champion_version(uri: str, name: str) -> Optional[str]:
    from components.registry import client

    with client._local_store(uri):
        mv = client._alias_version(client._client(uri), name, client.CHAMPION)
    return str(mv.version) if mv is not None else None


@contextlib.contextmanager
def mlflow_serve(tracking_uri: str, model_uri: str, workdir, timeout: float = 240):
    """`mlflow models serve -m MODEL_URI` on a free loopback port, started and stopped here;
    yields its base URL once /ping answers. Its output goes to WORKDIR/serve.log."""
    port = _free_port()
    env = dict(os.environ, MLFLOW_TRACKING_URI=tracking_uri,
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    log_path = os.path.join(str(workdir), "serve.log")
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", model_uri,
         "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(workdir),
        start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while True:
            assert proc.poll() is None, open(log_path).read()[-3000:]
            try:
                with urllib.request.urlopen(base + "/ping", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.time() < deadline, f"server did not come up in {timeout:.0f} s"
            time.sleep(1)
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()


def invoke(base: str, columns, rows) -> List[Dict[str, Any]]:
    """POST /invocations with a `dataframe_split` body; the predictions."""
    body = json.dumps({"dataframe_split": {"columns": list(columns), "data": rows}}).encode()
    req = urllib.request.Request(base + "/invocations", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        assert r.status == 200
        return json.loads(r.read())["predictions"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
