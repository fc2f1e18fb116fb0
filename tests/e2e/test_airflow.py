"""`make airflow-test` inside `make test`: the Airflow DAG file, run by
`airflow dags test` in a temporary AIRFLOW_HOME with SQLite, pushes a model;
its Pusher waits while another process holds the output's lock (issue 18)."""
import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.e2e

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "run_airflow_dag.py")


def test_airflow_dags_test_runs_the_pipeline_and_pushes_a_model():
    proc = subprocess.run([sys.executable, SCRIPT, "--epochs", "2", "--hold-lock"],
                          capture_output=True,
                          text=True, timeout=1800)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0 and result["ok"], (result, proc.stderr[-4000:])
    assert result["dag_run_state"] == "success"
    states = result["task_states"]
    for task in ("check_inputs", "CsvExampleGen", "Transform", "Trainer", "AnomalyEvaluator",
                 "latest_blessed_model_resolver", "Pusher"):
        assert states.get(task) == "success", states
    assert len(result["pushed_models"]) == 1
    assert result["lock_wait_seen"]  # the Pusher waited for the lock, then pushed
    assert os.path.basename(result["pushed_models"][0]).isdigit()
