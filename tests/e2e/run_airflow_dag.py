"""`make airflow-test`: run the Airflow DAG for real, in a throw-away Airflow.

Creates a temporary AIRFLOW_HOME (SQLite metadata database, no example DAGs)
whose DAGs folder holds a copy of pipeline/runners/airflow_dag.py, runs
`airflow db migrate` and `airflow dags test <dag_id> <date>` on the bundled
data (or --data) with few epochs, then checks that the DAG run succeeded,
every task succeeded, and the Pusher wrote a SavedModel version under
<output>/serving_model/<model_name>/. Prints one JSON line with the timings;
exit status 0 on success, 1 otherwise. The temporary directory is removed
unless --keep. With --hold-lock this script holds the output's lock
(components/output_lock.py, as a CLI run on the same output would) until the
DAG's Pusher has waited for it a few seconds: the Pusher must wait, say so in
its log, then push (`lock_wait_seen` in the JSON line).

Not a pytest module (tests/pipeline/test_orchestration.py runs it in a subprocess).
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DAG_FILE = os.path.join(ROOT, "pipeline", "runners", "airflow_dag.py")
DEFAULT_DATA = os.path.join(ROOT, "data", "cardio.csv")


def airflow_env(home: str, dags: str, output: str, data: str, label: str, epochs: int,
                name: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "ANOMALY_PIPELINE_"))}
    env.update({
        "AIRFLOW_HOME": home,
        "AIRFLOW__CORE__DAGS_FOLDER": dags,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "sqlite:///" + os.path.join(home, "airflow.db"),
        "AIRFLOW__CORE__EXECUTOR": "SequentialExecutor",
        # Importing TFX takes 10-30 s on a busy 2-core machine; the default is 30 s.
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "300",
        "AIRFLOW__CORE__DAG_FILE_PROCESSOR_TIMEOUT": "300",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "PYTHONWARNINGS": "ignore",
        "ANOMALY_PIPELINE_DATA": data,
        "ANOMALY_PIPELINE_OUTPUT": output,
        "ANOMALY_PIPELINE_EPOCHS": str(epochs),
        "ANOMALY_PIPELINE_NAME": name,
    })
    if label:
        env["ANOMALY_PIPELINE_LABEL_COLUMN"] = label
    # The venv's bin first: Airflow and Beam start helper processes by name.
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


def _airflow(args, env, log, timeout):
    cmd = [sys.executable, "-m", "airflow", *args]
    with open(log, "a", encoding="utf-8") as f:
        f.write(f"\n$ {' '.join(cmd)}\n")
        f.flush()
        proc = subprocess.run(cmd, env=env, stdout=f, stderr=subprocess.STDOUT,
                              timeout=timeout, cwd=os.path.dirname(log))
    return proc.returncode


def run_states(db: str, dag_id: str) -> dict:
    """{"dag_run_state", "run_id", "task_states"} of the newest run of `dag_id`."""
    import sqlite3

    con = sqlite3.connect(db)
    try:
        row = con.execute("SELECT run_id, state FROM dag_run WHERE dag_id = ? "
                          "ORDER BY id DESC LIMIT 1", (dag_id,)).fetchone()
        if row is None:
            return {"dag_run_state": None, "task_states": {}}
        tasks = con.execute("SELECT task_id, state FROM task_instance WHERE dag_id = ? AND "
                            "run_id = ?", (dag_id, row[0])).fetchall()
    finally:
        con.close()
    return {"run_id": row[0], "dag_run_state": row[1], "task_states": dict(tasks)}


class LockHolder(threading.Thread):
    """Holds <output>/.lock from now until the Pusher has started and waited `hold_s`."""

    def __init__(self, output: str, hold_s: float = 5.0, timeout: float = 1500):
        super().__init__(daemon=True)
        self.output, self.hold_s, self.timeout = output, hold_s, timeout
        self.held, self.stop = threading.Event(), threading.Event()

    def run(self):
        sys.path.insert(0, ROOT)
        from components import output_lock

        pusher = os.path.join(self.output, "pipeline_root", "Pusher")
        with output_lock.hold(self.output, command="run_airflow_dag.py --hold-lock"):
            self.held.set()
            deadline = time.time() + self.timeout
            while not os.path.isdir(pusher) and time.time() < deadline:
                if self.stop.wait(0.2):
                    return
            self.stop.wait(self.hold_s)


def _mentions(root: str, text: str) -> bool:
    for dirpath, _, files in os.walk(root):
        for name in files:
            if name.endswith((".log", ".txt")) or "." not in name:
                try:
                    with open(os.path.join(dirpath, name), encoding="utf-8",
                              errors="replace") as f:
                        if text in f.read():
                            return True
                except OSError:
                    continue
    return False


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=DEFAULT_DATA)
    p.add_argument("--label-column", default="label")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--date", default="2024-01-02", help="logical date of the test run")
    p.add_argument("--dag-id", default="anomaly-pipeline")
    p.add_argument("--keep", action="store_true", help="keep the temporary AIRFLOW_HOME")
    p.add_argument("--timeout", type=int, default=1500, help="seconds for `dags test`")
    p.add_argument("--hold-lock", action="store_true",
                   help="hold the output's lock until the Pusher has waited for it")
    a = p.parse_args(argv)

    tmp = tempfile.mkdtemp(prefix="airflow-test-")
    home, dags, output = (os.path.join(tmp, n) for n in ("airflow_home", "dags", "out"))
    os.makedirs(home)
    os.makedirs(dags)
    shutil.copy(DAG_FILE, os.path.join(dags, "anomaly_pipeline_dag.py"))
    log = os.path.join(tmp, "airflow.log")
    env = airflow_env(home, dags, output, os.path.abspath(a.data), a.label_column, a.epochs,
                      a.dag_id)
    result = {"airflow_home": home, "log": log, "output": output, "dag_id": a.dag_id,
              "ok": False}
    started = time.time()
    try:
        rc = _airflow(["db", "migrate"], env, log, timeout=600)
        result["db_migrate_seconds"] = round(time.time() - started, 1)
        if rc != 0:
            result["error"] = f"airflow db migrate exited {rc}"
            return _finish(result, a.keep, tmp)
        holder = None
        if a.hold_lock:
            holder = LockHolder(output, timeout=a.timeout)
            holder.start()
            holder.held.wait(60)
        t = time.time()
        try:
            rc = _airflow(["dags", "test", a.dag_id, a.date], env, log, timeout=a.timeout)
        finally:
            if holder is not None:
                holder.stop.set()
                holder.join(30)
        if a.hold_lock:
            result["lock_wait_seen"] = _mentions(tmp, "waiting up to")
        result["dags_test_seconds"] = round(time.time() - t, 1)
        result["dags_test_exit"] = rc
        # `dags test` does not serialize the DAG, so `airflow dags list-runs` cannot
        # see it; the run and task states are in Airflow's SQLite database.
        result.update(run_states(os.path.join(home, "airflow.db"), a.dag_id))
        versions = sorted(glob.glob(os.path.join(output, "serving_model", "*", "*",
                                                 "saved_model.pb")))
        result["pushed_models"] = [os.path.dirname(v) for v in versions]
        problems = []
        if rc != 0:
            problems.append(f"airflow dags test exited {rc}")
        if result["dag_run_state"] != "success":
            problems.append(f"DAG run state {result['dag_run_state']!r}")
        bad = {k: v for k, v in (result.get("task_states") or {}).items() if v != "success"}
        if bad or not result.get("task_states"):
            problems.append(f"tasks not successful: {bad or 'no task states'}")
        if not versions:
            problems.append("no SavedModel was pushed under serving_model/")
        if a.hold_lock and not result.get("lock_wait_seen"):
            problems.append("the Pusher did not wait for the output's lock")
        elif not os.path.isfile(os.path.join(os.path.dirname(versions[-1]), "assets",
                                             "threshold.json")) and not os.path.isfile(
                os.path.join(os.path.dirname(versions[-1]), "threshold.json")):
            problems.append("the pushed model has no threshold.json")
        if problems:
            result["error"] = "; ".join(problems)
        else:
            result["ok"] = True
    except subprocess.TimeoutExpired as e:
        result["error"] = f"timed out: {' '.join(map(str, e.cmd))}"
    result["seconds"] = round(time.time() - started, 1)
    return _finish(result, a.keep, tmp)


def _finish(result, keep, tmp) -> int:
    if not result["ok"]:
        try:
            with open(result["log"], encoding="utf-8", errors="replace") as f:
                tail = f.read()[-6000:]
            print(tail, file=sys.stderr)
        except OSError:
            pass
    if not keep and result["ok"]:
        shutil.rmtree(tmp, ignore_errors=True)
        result["removed"] = True
    print(json.dumps(result, sort_keys=True), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
