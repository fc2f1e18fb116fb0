"""`make test-distributed` inside `make test`: the DAG and `score` with their Beam work
on a job service and worker pool on another (network-namespace) host, against a local
run (tests/distributed/run_distributed.py, its workers with the project installed).
Needs root, `ip` and `unshare`."""
import json
import os
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MISSING = ([] if os.geteuid() == 0 else ["root"]) + [
    tool for tool in ("ip", "unshare") if shutil.which(tool) is None]


@pytest.mark.skipif(bool(MISSING), reason="make test-distributed needs " + ", ".join(MISSING))
def test_dag_and_score_on_a_worker_host_match_a_local_run():
    proc = subprocess.run([sys.executable, "-m", "tests.distributed.run_distributed"],
                          cwd=ROOT, capture_output=True, text=True, timeout=2400)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    failed = [k for k, v in result.get("checks", {}).items() if not v]
    assert proc.returncode == 0 and result["ok"], (failed, result.get("error"),
                                                   result.get("import_errors"),
                                                   proc.stderr[-3000:])
    assert result["removed"] == ["ap-client", "ap-worker"]  # the hosts are gone again
    stages = result["evidence"]["worker_logs"]["stages"]
    for stage in ("GenerateStatistics[train]", "Analyze", "Score_current", "Score"):
        assert stage in stages, stages
    assert result["comparison"]["scores"]["rows"] == 1831
