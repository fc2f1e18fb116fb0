"""`make test-distributed`: the DAG and `score` with their Beam work on another host.

    python -m tests.distributed.run_distributed [--worker-deps installed|staged] [--keep]

Two hosts, network namespaces this script creates (tests/distributed/hosts.py):
ap-client (10.231.0.1) and ap-worker (10.231.0.2), joined by a veth pair.

  worker host, in a private mount namespace where the client's source tree
  (components/, pipeline/) is hidden under empty tmpfs mounts:
    tests/distributed/job_service.py   Beam's portable job service at <worker>:8099
    apache_beam...worker_pool_main     an SDK worker pool at <worker>:50000 (EXTERNAL)
    both with PYTHONPATH=<work>/worker-site, holding
    tests/distributed/worker_site/sitecustomize.py (a log file per SDK harness) and,
    with --worker-deps installed, this project pip-installed from the sdist
    pipeline/beam_staging.py builds; with --worker-deps staged, the pool starts each
    worker through tests/distributed/boot.py, which installs the sdist the client
    staged with the job, as the Beam SDK container does on Dataflow/Flink/Spark
  client host:
    anomaly-pipeline run --runner beam --beam-arg=--runner=PortableRunner
        --beam-arg=--job_endpoint=<worker>:8099 --beam-arg=--environment_type=EXTERNAL
        --beam-arg=--environment_config=<worker>:50000
    anomaly-pipeline score --model <the pushed model> ... the same --beam-args
  reference, in the root namespace: the same `run` with --runner local.

Checks (every one must hold): both runs pushed a model; `score` scored every
row; the job service ran the four Beam jobs (StatisticsGen, Transform, the
AnomalyEvaluator, score) and each was staged with this project's sdist, never
TFX's tfx_ephemeral one; every SDK harness process ran in the worker namespace
(process accounting: /proc/<pid>/ns/net, sampled every 0.5 s); the harnesses'
own logs name the stages of the four jobs and show project modules imported
from what the worker host was given; the pushed models' weights and
thresholds, the eval metrics and the scores equal the local run's within
--rtol/--atol (tests/distributed/compare.py).

Prints one JSON line (also <work>/result.json); exit 0 when every check held,
1 otherwise, 0 with "skipped" when not root or without `ip`/`unshare`. The
namespaces and every process in them go at the end, also on failure or
SIGTERM, and stale ones of an earlier run at the start.

Experiments that show the trouble this needed:
  --stock-job-service  Beam's own local_job_service_main: binds localhost only,
                       unreachable from the client host
  --worker-deps none   workers without the project: ModuleNotFoundError:
                       No module named 'components' (tfx#3435, tfx#4764)
"""
import argparse
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import List

from tests.distributed import evidence, hosts
from tests.distributed.processes import (VENV_BIN, Command, Sampler, Service, base_env,
                                         run_logged)

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CLI = os.path.join(VENV_BIN, "anomaly-pipeline")
DEFAULT_DATA = os.path.join(ROOT, "data", "cardio.csv")
JOB_PORT, POOL_PORT = 8099, 50000
SOURCE_PACKAGES = ("components", "pipeline")
METRICS = ("roc_auc", "pr_auc", "f1", "precision", "recall", "eval_rows")


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def missing_requirements() -> List[str]:
    out = [] if os.geteuid() == 0 else ["root (ip netns, mount)"]
    return out + [tool for tool in ("ip", "unshare") if shutil.which(tool) is None]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--worker-deps", choices=("installed", "staged", "none"), default="installed",
                   help="how the worker host gets this project: installed (pip-installed on "
                        "the workers' PYTHONPATH, as docs/runners.md says for a worker pool), "
                        "staged (installed by each worker from the sdist the client staged), "
                        "none (experiment: ModuleNotFoundError)")
    p.add_argument("--data", default=DEFAULT_DATA)
    p.add_argument("--label-column", default="label")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--score-batch-size", type=int, default=500,
                   help="rows per score chunk (several chunks on the small file)")
    p.add_argument("--subnet", default="10.231.0", help="first three octets of the /24")
    p.add_argument("--work", default=None, help="work directory (default: a new one in /tmp)")
    p.add_argument("--keep", action="store_true",
                   help="keep the runs' outputs on success too (logs and result.json always stay)")
    p.add_argument("--timeout", type=int, default=1500, help="seconds per command")
    p.add_argument("--rtol", type=float, default=1e-5)
    p.add_argument("--atol", type=float, default=1e-6)
    p.add_argument("--stock-job-service", action="store_true",
                   help="experiment: Beam's own local_job_service_main (binds localhost)")
    return p.parse_args(argv)


def worker_site(site: str, deps: str) -> str:
    """<site>: the per-harness log hook and, for `installed`, this project pip-installed
    from the same sdist the client stages. Returns the sdist's path."""
    from pipeline import beam_staging

    sdist = beam_staging.build_project_sdist()
    if sdist is None:
        raise RuntimeError("could not build the project's sdist (pipeline/beam_staging.py)")
    os.makedirs(site, exist_ok=True)
    if deps == "installed":
        hosts.sh(sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                 "--no-build-isolation", "--no-compile", "--target", site, sdist, timeout=600)
    shutil.copy2(os.path.join(HERE, "worker_site", "sitecustomize.py"), site)
    return sdist


def start_worker_host(a, work: str, worker_ip: str) -> List[Service]:
    logs, boot_dir = os.path.join(work, "logs"), os.path.join(work, "boot")
    env = base_env({"PYTHONPATH": os.path.join(work, "worker-site"),
                    "AP_WORKER_LOG_DIR": os.path.join(work, "worker-logs"),
                    "AP_BOOT_DIR": boot_dir})
    if a.stock_job_service:
        js = [sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main",
              "--port", str(JOB_PORT)]
    else:
        js = [sys.executable, os.path.join(HERE, "job_service.py"), "--host", worker_ip,
              "--port", str(JOB_PORT), "--staging-dir", os.path.join(work, "job-staging")]
    pool = [sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main",
            f"--service_port={POOL_PORT}"]
    if a.worker_deps == "staged":
        pool.append(f"--container_executable={os.path.join(HERE, 'boot.py')}")
    hidden = [os.path.join(ROOT, d) for d in SOURCE_PACKAGES]
    return [Service(name, hosts.on_worker(cmd, hidden), env, os.path.join(logs, f"{name}.log"))
            for name, cmd in (("job_service", js), ("worker_pool", pool))]


def import_errors(*log_paths: str) -> List[str]:
    found = set()
    for path in log_paths:
        if os.path.exists(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                found.update(re.findall(r"(?:ModuleNotFoundError|ImportError): [^\n\\]+", f.read()))
    return sorted(found)[:5]


def check_evidence(result: dict, checks: dict, work: str, sampler: Sampler, sdist: str,
                   deps: str, n_jobs: int) -> None:
    """Did the Beam work run on the worker host, with the project it was given?"""
    js = evidence.job_service(os.path.join(work, "logs", "job_service.log"))
    harnesses = sampler.harnesses()
    workers = evidence.workers(os.path.join(work, "worker-logs"), hosts.netns_id(hosts.NS_WORKER))
    missing = evidence.missing_stages(workers["stages"])
    for h in harnesses:
        h.pop("first_seen", None)
    result["evidence"] = {"job_service": js, "sdk_harness_processes": harnesses,
                          "cpu_seconds_by_netns_role": sampler.cpu_by_role(),
                          "worker_logs": workers, "missing_stages": missing}
    name = os.path.basename(sdist)
    checks["job_service_ran_every_beam_job"] = (
        len(js["jobs"]) == n_jobs and all(j["state"] == "DONE" for j in js["jobs"]))
    checks["every_job_staged_the_project_not_tfx_ephemeral"] = (
        len(js["staged_per_job"]) == n_jobs and all(
            name in staged and not any("tfx_ephemeral" in s for s in staged)
            for staged in js["staged_per_job"]))
    checks["sdk_harnesses_only_on_worker_host"] = (
        len(harnesses) >= n_jobs and all(h["netns"] == hosts.NS_WORKER for h in harnesses))
    checks["worker_logs_from_worker_host"] = bool(workers["workers"]) and all(
        w["in_worker_netns"] for w in workers["workers"])
    checks["worker_logs_name_every_stage"] = not missing
    given = os.path.join(work, "boot" if deps == "staged" else "worker-site")
    checks["workers_imported_the_project_they_were_given"] = bool(
        workers["project_module_files"]) and all(
        f.startswith(given + os.sep) for f in workers["project_module_files"])


def record_run(result: dict, name: str, r) -> dict:
    s = r.json
    result[f"run_{name}"] = {"exit": r.returncode, "seconds": r.seconds,
                             "pushed_model": s.get("pushed_model"),
                             "threshold": s.get("threshold"), "metrics": s.get("metrics")}
    result["checks"][f"run_{name}_pushed_a_model"] = (r.returncode == 0
                                                      and bool(s.get("pushed_model")))
    return s


def run_all(a, work: str, result: dict, services: List[Service], sampler: Sampler,
            background: List[Command]) -> None:
    checks = result["checks"]
    client_ip, worker_ip = f"{a.subnet}.1", f"{a.subnet}.2"
    logs = os.path.join(work, "logs")
    run = ["run", "--data", a.data, "--label-column", a.label_column, "--epochs", str(a.epochs)]
    env = base_env()
    # The reference needs neither host: it runs meanwhile (wall time; the evidence only
    # counts processes in the two namespaces).
    log("run local (root namespace, in the background)")
    local_run = Command([CLI, *run, "--output", os.path.join(work, "local"), "--runner", "local"],
                        env, os.path.join(logs, "run_local.log"), ROOT)
    background.append(local_run)
    stale = hosts.remove()
    if stale:
        log(f"removed stale {stale}")
    hosts.create(client_ip, worker_ip)
    result["hosts"] = {"client": f"{hosts.NS_CLIENT} {client_ip}",
                       "worker": f"{hosts.NS_WORKER} {worker_ip}",
                       "worker_netns": hosts.netns_id(hosts.NS_WORKER)}
    t0 = time.time()
    sdist = worker_site(os.path.join(work, "worker-site"), a.worker_deps)
    result["sdist"], result["worker_site_seconds"] = sdist, round(time.time() - t0, 1)
    services += start_worker_host(a, work, worker_ip)
    for port in (JOB_PORT, POOL_PORT):
        checks[f"port_{port}_reachable_from_client"] = hosts.wait_reachable(worker_ip, port, 120)
    if not all(checks.values()):
        raise RuntimeError(f"the worker host's services are not reachable at {worker_ip} "
                           f"(see {logs}/job_service.log, worker_pool.log)")
    sampler.start()

    beam_args = ["--beam-arg=--runner=PortableRunner",
                 f"--beam-arg=--job_endpoint={worker_ip}:{JOB_PORT}",
                 "--beam-arg=--environment_type=EXTERNAL",
                 f"--beam-arg=--environment_config={worker_ip}:{POOL_PORT}"]
    log("run distributed (client host)")
    r = run_logged(hosts.on_client([CLI, *run, "--output", os.path.join(work, "distributed"),
                                    "--runner", "beam", *beam_args]),
                   env, os.path.join(logs, "run_distributed.log"), a.timeout, ROOT)
    dist_summary = record_run(result, "distributed", r)
    dist_model = dist_summary.get("pushed_model")
    if not dist_model:
        return

    log("score (distributed model, on the worker host)")
    scored = os.path.join(work, "scored.csv")
    r = run_logged(hosts.on_client([CLI, "score", "--model", dist_model, "--input", a.data,
                                    "--output", scored, "--batch-size", str(a.score_batch_size),
                                    *beam_args]),
                   env, os.path.join(logs, "score_distributed.log"), a.timeout, ROOT)
    s = r.json
    result["score_distributed"] = {"exit": r.returncode, "seconds": r.seconds,
                                   "rows": s.get("rows"), "flagged": s.get("flagged"),
                                   "chunks": s.get("chunks")}
    checks["score_scored_every_row"] = r.returncode == 0 and bool(s.get("rows"))
    sampler.finish()
    check_evidence(result, checks, work, sampler, sdist, a.worker_deps, n_jobs=4)

    local_summary = record_run(result, "local", local_run.wait(a.timeout))
    local_model = local_summary.get("pushed_model")
    if local_model and checks["score_scored_every_row"]:
        log("compare with the local run")
        proc = hosts.sh(sys.executable, os.path.join(HERE, "compare.py"), local_model,
                        dist_model, a.data, scored, str(a.rtol), str(a.atol), check=False,
                        env=base_env(), timeout=600)
        found = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        result["comparison"] = (json.loads(found[-1]) if found
                                else {"ok": False, "error": proc.stderr[-2000:]})
        checks["model_and_scores_equal_local_within_tolerance"] = result["comparison"]["ok"]
        ml, md = local_summary.get("metrics") or {}, dist_summary.get("metrics") or {}
        result["metrics"] = {k: [ml.get(k), md.get(k)] for k in METRICS}
        checks["eval_metrics_equal_local"] = all(
            x is not None and y is not None
            and math.isclose(x, y, rel_tol=a.rtol, abs_tol=a.atol)
            for x, y in result["metrics"].values())


def main(argv=None) -> int:
    a = parse_args(argv)
    a.data = os.path.abspath(a.data)
    missing = missing_requirements()
    if missing:
        reason = "needs " + ", ".join(missing)
        print(f"test-distributed SKIPPED: {reason}", file=sys.stderr)
        print(json.dumps({"ok": None, "skipped": reason}), flush=True)
        return 0
    started = time.time()
    # SIGTERM (e.g. a CI timeout) unwinds through `finally`: services and namespaces go.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = os.path.abspath(a.work or tempfile.mkdtemp(prefix="ap-distributed-"))
    for d in ("logs", "worker-logs", "worker-site", "boot", "job-staging"):
        shutil.rmtree(os.path.join(work, d), ignore_errors=True)
        os.makedirs(os.path.join(work, d))
    result: dict = {"work": work, "worker_deps": a.worker_deps, "ok": False, "checks": {}}
    services: List[Service] = []
    background: List[Command] = []
    sampler = Sampler()
    try:
        with hosts.exclusive(timeout=a.timeout):
            try:
                run_all(a, work, result, services, sampler, background)
                result["ok"] = bool(result["checks"]) and all(result["checks"].values())
            finally:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)  # let the cleanup finish
                sampler.stop_event.set()
                for c in background:
                    c.kill()
                result["service_exit"] = {s.name: s.stop() for s in services}
                result["removed"] = hosts.remove()
    except (Exception, SystemExit) as e:  # noqa: BLE001 - reported; the cleanup ran
        result["error"] = f"{type(e).__name__}: {e}"
    finally:
        if not result["ok"]:
            result["import_errors"] = import_errors(
                *(os.path.join(work, "logs", n) for n in
                  ("job_service.log", "worker_pool.log", "run_distributed.log",
                   "score_distributed.log")))
        result["wall_seconds"] = round(time.time() - started, 1)
        with open(os.path.join(work, "result.json"), "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1, sort_keys=True, default=str)
        if result["ok"] and not a.keep:
            for d in ("local", "distributed", "worker-site", "boot", "job-staging"):
                shutil.rmtree(os.path.join(work, d), ignore_errors=True)
            os.remove(os.path.join(work, "scored.csv"))  # logs and result.json stay
        failed = [k for k, v in result["checks"].items() if not v]
        log(f"{'ok' if result['ok'] else 'FAILED'} in {result['wall_seconds']} s"
            + (f"; failed: {failed}" if failed else "")
            + (f"; {result['error']}" if "error" in result else "") + f"; details: {work}")
        print(json.dumps(result, sort_keys=True, default=str), flush=True)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
