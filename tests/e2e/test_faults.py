"""Faults a scheduled pipeline meets (issue 18), through the CLI with real processes.

- two runs on one --output: the second stops at once (exit 2, one line naming the
  first) or, with --wait, waits and is judged against the first one's model; both
  summaries are true;
- a full disk (a small tmpfs as --output, filled when the Pusher starts), SIGTERM
  during the Pusher, memory running out in the Trainer, an output that turned
  read-only: exit 1, one `error:` line naming the path or resource, no traceback
  on the terminal; serving_model/, registry.json and MLflow agree; a rerun completes;
- a broken model (truncated variables, no checksums, a corrupted registry copy)
  given to score, the pyfunc, drift and run: exit 2, one line naming the model path
  and the broken part.
"""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from components import output_lock
from components.model import layout
from tests.helpers import cli_subprocess, make_data, one_error_line
from tests.helpers.consistency import assert_consistent
from tests.helpers.disks import fill, small_disk

pytestmark = pytest.mark.e2e

RUN_ARGS = ("--label-column", "label", "--epochs", "2", "--batch-size", "32")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA_FILE = os.path.join("variables", "variables.data-00000-of-00001")


def _run_cmd(data, out, *extra):
    return [sys.executable, "-m", "pipeline.cli", "run", "--data", str(data), "--output",
            str(out), *RUN_ARGS, *extra]


def _start(cmd, log_path):
    log = open(log_path, "w")
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT,
                            start_new_session=True)


def _finish(proc, log_path, timeout=900):
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out, open(log_path).read()


def _summary(stdout):
    return json.loads(stdout.strip().splitlines()[-1])


def _wait_for(predicate, proc, what, log_path, timeout=600):
    deadline = time.time() + timeout
    while not predicate():
        assert proc.poll() is None, f"ended before {what}:\n" + open(log_path).read()[-3000:]
        assert time.time() < deadline, f"never saw {what}"
        time.sleep(0.02)


def _pusher_started(out):
    return lambda: os.path.isdir(os.path.join(str(out), "pipeline_root", "Pusher"))


def _stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture(scope="module")
def race(tmp_path_factory):
    """Run A; while it holds the output, B (no --wait) and C (--wait, other data)."""
    root = tmp_path_factory.mktemp("race")
    a_data, c_data, out = root / "a.csv", root / "c.csv", root / "out"
    make_data(n_normal=300, n_outliers=15, seed=1).to_csv(a_data, index=False)
    make_data(n_normal=300, n_outliers=15, seed=2).to_csv(c_data, index=False)
    a = _start(_run_cmd(a_data, out), root / "a.log")
    c = None
    try:
        _wait_for(lambda: (output_lock.read_holder(str(out)) or {}).get("pid") == a.pid, a,
                  "A holding the lock", root / "a.log")
        started = time.time()
        b = subprocess.run(_run_cmd(a_data, out), capture_output=True, text=True, cwd=ROOT,
                           timeout=300)
        b_seconds = time.time() - started
        # Blessed however it compares (2 epochs make weak models), but still compared.
        c = _start(_run_cmd(c_data, out, "--wait", "900", "--baseline-tolerance", "1"),
                   root / "c.log")
        a_result = _finish(a, root / "a.log")
        c_result = _finish(c, root / "c.log")
    finally:
        _stop(a)
        if c is not None:
            _stop(c)
    return {"root": root, "out": out, "a": a_result, "b": b, "b_seconds": b_seconds,
            "c": c_result, "a_pid": a.pid, "data": a_data}


def test_a_second_run_stops_at_once_naming_the_holder(race):
    b = race["b"]
    assert b.returncode == 2 and b.stdout == "", b.stderr[-3000:]
    line = one_error_line(b.stderr)
    assert f"pid {race['a_pid']} on " in line and str(race["out"]) in line
    assert "in use by another run" in line and "--wait" in line
    assert race["b_seconds"] < 120  # before any pipeline work


def test_a_waiting_run_runs_after_the_first_and_is_compared_with_its_model(race):
    (a_code, a_out, a_err), (c_code, c_out, c_err) = race["a"], race["c"]
    assert a_code == 0, a_err[-3000:]
    assert c_code == 0, c_err[-3000:]
    assert "waiting up to 900 s for the run holding" in c_err
    assert f"pid {race['a_pid']}" in c_err
    a, c = _summary(a_out), _summary(c_out)
    # Every summary is true: each names the version it pushed ...
    assert a["blessed"] and c["blessed"]
    assert a["pushed_model"] and c["pushed_model"] and a["pushed_model"] != c["pushed_model"]
    assert "Traceback" not in a_err and "Traceback" not in c_err
    # ... and the model it was compared with: C's baseline is A's model.
    a_model = json.load(open(a["evaluation"]))["model_uri"]
    assert a["baseline"] is None
    assert c["baseline"]["model_uri"] == a_model
    served = assert_consistent(race["out"])
    assert [os.path.join(race["out"], "serving_model", "anomaly_detector", v)
            for v in served] == [a["pushed_model"], c["pushed_model"]]
    entries = json.load(open(race["out"] / "registry.json"))["versions"]
    assert [e["pipeline_run_id"] for e in entries] == [a["run_id"], c["run_id"]]
    assert [e["version"] for e in entries] == [a["registry"]["version"],
                                                c["registry"]["version"]]


def _corrupt_copy(race, tmp_path, keep_checksums=True):
    version = _summary(race["c"][1])["pushed_model"]
    broken = str(tmp_path / "broken" / os.path.basename(version))
    shutil.copytree(version, broken)
    if not keep_checksums:
        os.remove(os.path.join(broken, layout.CHECKSUMS_FILE))
    path = os.path.join(broken, DATA_FILE)
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])
    return broken


def _scored_input(race, tmp_path):
    src = tmp_path / "in.csv"
    make_data(n_normal=20, n_outliers=2, seed=5).to_csv(src, index=False)
    return src


@pytest.mark.parametrize("keep_checksums", [True, False])
def test_score_refuses_a_truncated_model_naming_the_part(race, tmp_path, keep_checksums):
    broken = _corrupt_copy(race, tmp_path, keep_checksums)
    out = tmp_path / "scored.csv"
    proc = cli_subprocess("score", "--model", broken, "--input", _scored_input(race, tmp_path),
                          "--output", out, check=False)
    assert proc.returncode == 2 and proc.stdout == "", proc.stderr[-3000:]
    line = one_error_line(proc.stderr)
    if keep_checksums:
        assert line.startswith(f"error: {os.path.join(broken, DATA_FILE)}: broken model: ")
        assert "truncated" in line
    else:
        assert line.startswith(f"error: {os.path.join(broken, 'variables')}: broken model: ")
        assert "unreadable" in line
    assert not out.exists()


def test_drift_and_run_refuse_a_broken_served_model(race, tmp_path):
    copy = tmp_path / "out"
    shutil.copytree(race["out"], copy)
    newest = layout.newest_version_dir(str(copy / "serving_model" / "anomaly_detector"))
    os.remove(os.path.join(newest, "assets", "threshold.json"))  # listed in checksums.json
    drift = cli_subprocess("drift", "--reference", copy, "--data", race["data"], check=False)
    assert drift.returncode == 2, drift.stderr[-3000:]
    assert "threshold.json: broken model: missing file" in one_error_line(drift.stderr)
    run = cli_subprocess("run", "--data", race["data"], "--output", copy, *RUN_ARGS,
                         check=False)
    assert run.returncode == 2 and run.stdout == "", run.stderr[-3000:]
    assert f"{newest}/assets/threshold.json: broken model" in one_error_line(run.stderr)


def test_the_pyfunc_refuses_a_corrupted_registry_copy(race, tmp_path):
    uri = "sqlite:///" + str(race["out"] / "mlflow.db")
    code = textwrap.dedent(f"""
        import glob, os, sys, mlflow
        from components.errors import InputError
        from components.registry import client
        mlflow.set_tracking_uri({uri!r})
        info = client.describe({uri!r}, "models:/anomaly_detector@champion")
        local = mlflow.artifacts.download_artifacts(artifact_uri=info["source"],
                                                    dst_path={str(tmp_path)!r})
        data = glob.glob(os.path.join(local, "artifacts", "saved_model", "variables",
                                      "variables.data-*"))[0]
        open(data, "r+b").truncate(10)
        try:
            mlflow.pyfunc.load_model(local)
        except InputError as e:
            print("InputError:", e)
            sys.exit(0)
        sys.exit("loaded a corrupted model")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=str(tmp_path), timeout=600, env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "variables.data-00000-of-00001: broken model:" in proc.stdout
    assert "truncated" in proc.stdout


def _rerun_completes(data, out):
    proc = cli_subprocess(*_run_cmd(data, out)[3:], check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = _summary(proc.stdout)
    assert summary["pushed_model"]
    served = assert_consistent(out)
    assert served == [os.path.basename(summary["pushed_model"])]
    return summary


def test_sigterm_during_the_pusher_stops_cleanly_and_a_rerun_completes(tmp_path):
    data, out = tmp_path / "d.csv", tmp_path / "out"
    make_data(n_normal=300, n_outliers=15, seed=3).to_csv(data, index=False)
    proc = _start(_run_cmd(data, out), tmp_path / "run.log")
    try:
        _wait_for(_pusher_started(out), proc, "the Pusher", tmp_path / "run.log")
        proc.send_signal(signal.SIGTERM)  # as a scheduler stopping the task would
        code, stdout, err = _finish(proc, tmp_path / "run.log", timeout=300)
    finally:
        _stop(proc)
    assert code == 1 and stdout == "", err[-3000:]
    line = one_error_line(err)
    assert "stopped by SIGTERM in Pusher" in line and "rerun" in line
    assert len(assert_consistent(out)) <= 1
    summary = _rerun_completes(data, out)
    assert "Pusher" in summary["components"]["ran"]


def test_a_full_disk_during_the_pusher_is_one_line_and_a_rerun_completes(tmp_path):
    data = tmp_path / "d.csv"
    make_data(n_normal=300, n_outliers=15, seed=4).to_csv(data, index=False)
    with small_disk(tmp_path / "disk", "24M") as disk:
        out = os.path.join(disk, "out")
        proc = _start(_run_cmd(data, out), tmp_path / "run.log")
        try:
            _wait_for(_pusher_started(out), proc, "the Pusher", tmp_path / "run.log")
            ballast = fill(disk)
            code, stdout, err = _finish(proc, tmp_path / "run.log", timeout=300)
        finally:
            _stop(proc)
        assert code == 1 and stdout == "", err[-3000:]
        line = one_error_line(err)
        assert "disk full" in line and "free space" in line and "rerun" in line, line
        assert line.startswith(f"error: {disk}/"), line
        assert len(assert_consistent(out)) <= 1  # a version is served only if recorded
        logs = glob.glob(os.path.join(out, "logs", "*.log"))
        os.remove(ballast)
        assert any("Traceback" in open(p).read() for p in logs) or "(log: /" in line
        _rerun_completes(data, out)


def test_running_out_of_memory_in_the_trainer_is_one_line(tmp_path):
    data, out = tmp_path / "d.csv", tmp_path / "out"
    make_data(n_normal=200, n_outliers=10, seed=5).to_csv(data, index=False)
    # The Trainer's fit raises MemoryError, as numpy does when an array does not fit.
    wrapper = textwrap.dedent("""
        import sys
        import components.trainer.run as trainer_run
        def out_of_memory(*args, **kwargs):
            raise MemoryError("Unable to allocate 7.45 GiB for an array with shape "
                              "(1000000000,) and data type float64")
        trainer_run.train = out_of_memory
        from pipeline.cli import main
        sys.exit(main(sys.argv[1:]))
    """)
    proc = subprocess.run([sys.executable, "-c", wrapper, *_run_cmd(data, out)[3:]],
                          capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert proc.returncode == 1 and proc.stdout == "", proc.stderr[-3000:]
    line = one_error_line(proc.stderr)
    assert line.startswith("error: out of memory in Trainer (MemoryError: Unable to allocate")
    assert "more memory" in line
    assert assert_consistent(out) == []


def test_an_output_that_turned_read_only_is_one_line(tmp_path):
    data = tmp_path / "d.csv"
    make_data(n_normal=50, n_outliers=5, seed=6).to_csv(data, index=False)
    with small_disk(tmp_path / "disk", "4M") as disk:
        os.makedirs(os.path.join(disk, "out"))
        subprocess.run(["mount", "-o", "remount,ro", disk], check=True)
        proc = cli_subprocess(*_run_cmd(data, os.path.join(disk, "out"))[3:], check=False,
                              timeout=300)
    assert proc.returncode == 1 and proc.stdout == "", proc.stderr[-3000:]
    line = one_error_line(proc.stderr)
    # The first thing the run writes there (its log directory, else the lock) is named.
    assert re.match(rf"error: {re.escape(disk)}/out/(logs|\.lock): not writable "
                    r"\(Read-only file system\)", line), line
    assert "write access" in line
