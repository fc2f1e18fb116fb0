"""Crash safety (issue 7, item 5, the rerun part): `kill -9` during the
Trainer, then the same command again.

The rerun must complete, reuse what the killed run finished (ExampleGen,
statistics, schema, validation, Transform come from ML Metadata's cache),
train again and push. What TFX 1.16 leaves behind, checked here too: the
killed Trainer execution stays RUNNING in ML Metadata, under the killed run's
pipeline_run context. LocalDagRunner registers each run's executions under a
new pipeline_run context and the cache only reuses COMPLETE/CACHED
executions, so the stale entry neither blocks nor poisons the rerun; and
nothing was pushed, because the Pusher never started. The killed run's output
lock (<output>/.lock, issue 18) is taken over by the rerun.
"""
import glob
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import make_data

pytestmark = pytest.mark.e2e

UPSTREAM = {"CsvExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform"}


def _executions_by_run(metadata_path):
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2 as mlmd

    config = mlmd.ConnectionConfig()
    config.sqlite.filename_uri = metadata_path
    config.sqlite.connection_mode = mlmd.SqliteMetadataSourceConfig.READONLY
    store = metadata_store.MetadataStore(config)
    runs = []
    for run in sorted(store.get_contexts_by_type("pipeline_run"), key=lambda c: c.id):
        states = {}
        for e in store.get_executions_by_context(run.id):
            node = [c.name.split(".")[-1] for c in store.get_contexts_by_execution(e.id)
                    if store.get_context_types_by_id([c.type_id])[0].name == "node"][0]
            states[node] = mlmd.Execution.State.Name(e.last_known_state)
        runs.append(states)
    return runs


def test_kill_during_training_then_rerun_completes_from_the_cache(tmp_path):
    data, out = tmp_path / "train.csv", tmp_path / "out"
    make_data(n_normal=300, n_outliers=15, seed=1).to_csv(data, index=False)
    # Enough training steps that the kill lands while the Trainer is fitting.
    cmd = [sys.executable, "-m", "pipeline.cli", "run", "--data", str(data), "--label-column",
           "label", "--output", str(out), "--epochs", "50", "--batch-size", "8",
           "--early-stopping-patience", "0"]
    with open(tmp_path / "killed.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # its own process group
        try:
            deadline = time.time() + 600
            # The Trainer's TensorBoard directory appears when model.fit starts.
            tensorboard = str(out / "pipeline_root" / "Trainer" / "model_run" / "*" / "train")
            while not glob.glob(tensorboard):
                assert proc.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
                assert time.time() < deadline, "the Trainer never started"
                time.sleep(0.2)
            time.sleep(1.0)
            assert proc.poll() is None, "the run ended before it could be killed"
            assert not (out / "pipeline_root" / "Pusher").exists()
        finally:
            os.killpg(proc.pid, signal.SIGKILL)  # kill -9 the whole process group
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed = _executions_by_run(str(out / "metadata.sqlite"))[-1]
    assert killed["Trainer"] == "RUNNING"  # TFX never learns that it died
    assert all(killed[c] == "COMPLETE" for c in UPSTREAM)
    served = out / "serving_model" / "anomaly_detector"
    assert not served.exists() or os.listdir(served) == []

    # The killed run's lock is free (the kernel dropped it): the rerun takes it over.
    assert json.loads((out / ".lock").read_text())["pid"] == proc.pid
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"took over the lock of pid {proc.pid}" in rerun.stderr
    summary = json.loads(rerun.stdout.strip().splitlines()[-1])
    assert UPSTREAM <= set(summary["components"]["cached"]), summary["components"]
    assert "Trainer" in summary["components"]["ran"]
    assert summary["blessed"] is True and summary["pushed_model"]
    assert os.listdir(served) == [os.path.basename(summary["pushed_model"])]
    assert os.path.exists(os.path.join(summary["pushed_model"], "saved_model.pb"))
    runs = _executions_by_run(str(out / "metadata.sqlite"))
    assert runs[-1]["Trainer"] == "COMPLETE" and runs[-1]["Pusher"] == "COMPLETE"
    assert runs[-2]["Trainer"] == "RUNNING"  # the stale entry is history, not in the way
