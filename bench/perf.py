"""`make bench`: pipeline vs the plain-script recipe at 10k / 100k / 1M rows.

For each size, in the same run and on the same generated CSV (20 features, 1%
injected anomalies, a label column):
- the pipeline end to end through the CLI (`anomaly-pipeline run
  --no-model-selection`, so it trains the one model the plain script trains):
  wall time, peak RSS of the whole process tree, per-component seconds from
  ML Metadata, the Trainer's read / fit / export split;
- the reference recipe as a plain script (bench/plain_recipe.py: pandas read,
  StandardScaler, the same Keras model, same epochs and batch size, predict,
  threshold): wall time and peak RSS;
- `anomaly-pipeline score` (CSV in -> CSV out) vs a plain pandas + Keras
  predict script on the same CSV: rows/s.
Writes bench/results/perf.json and bench/results/perf.md. Not a test: nothing
here asserts on time.

Env: SIZES=10000,100000,1000000  EPOCHS=5  BATCH=1024  REPEAT=3 (interleaved runs per
size; the median is reported)  KEEP=1 (keep outputs)
"""
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VENV_BIN = os.path.dirname(sys.executable)
RESULTS = os.path.join(HERE, "results")
N_FEATURES = 20


def generate_csv(path: str, n_rows: int, seed: int = 0, chunk: int = 100_000) -> None:
    """Low-rank normal data plus 1% off-manifold anomalies, written in chunks."""
    rng = np.random.default_rng(seed)
    mix = np.random.default_rng(1).normal(size=(5, N_FEATURES))
    header = ",".join([f"f{i}" for i in range(N_FEATURES)] + ["label"])
    with open(path, "w") as f:
        f.write(header + "\n")
        done = 0
        while done < n_rows:
            n = min(chunk, n_rows - done)
            x = rng.normal(size=(n, 5)) @ mix + 0.1 * rng.normal(size=(n, N_FEATURES))
            y = rng.random(n) < 0.01
            x[y] += rng.normal(0, 3, size=(int(y.sum()), N_FEATURES))
            x = x * 5 + 100
            block = np.column_stack([x, y.astype(int)])
            np.savetxt(f, block, delimiter=",", fmt=["%.6g"] * N_FEATURES + ["%d"])
            done += n


class PeakRss:
    """Peak resident memory of a process and all its descendants, polled."""

    def __init__(self, pid: int, every: float = 0.2):
        import psutil

        self._proc, self._every, self.peak = psutil.Process(pid), every, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self):
        import psutil

        while not self._stop.is_set():
            try:
                procs = [self._proc] + self._proc.children(recursive=True)
                rss = 0
                for p in procs:
                    try:
                        rss += p.memory_info().rss
                    except psutil.Error:
                        pass
                self.peak = max(self.peak, rss)
            except psutil.Error:
                pass
            self._stop.wait(self._every)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def timed(cmd, env=None):
    env = dict(os.environ, **(env or {}))
    started = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=ROOT)
    rss = PeakRss(proc.pid)
    out, err = proc.communicate()
    peak = rss.stop()
    seconds = time.time() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({proc.returncode}): {err[-3000:]}")
    last = out.strip().splitlines()[-1] if out.strip() else "{}"
    return {"seconds": round(seconds, 2), "peak_rss_mb": round(peak / 2**20, 1),
            "result": json.loads(last)}


def component_seconds(metadata_path: str):
    """Per-component execution seconds of the newest run, from MLMD's tables."""
    con = sqlite3.connect(metadata_path)
    rows = con.execute(
        "SELECT c.name, e.create_time_since_epoch, e.last_update_time_since_epoch "
        "FROM Execution e JOIN Association a ON a.execution_id = e.id "
        "JOIN Context c ON c.id = a.context_id JOIN Type t ON t.id = c.type_id "
        "WHERE t.name = 'node'").fetchall()
    con.close()
    out = {}
    for name, start, end in rows:
        out[name.split(".")[-1]] = round((end - start) / 1000.0, 2)
    return out


def trainer_seconds(output: str):
    """The Trainer's own breakdown (read + transform, fit, export) from training_summary.json."""
    import glob

    found = sorted(glob.glob(os.path.join(output, "pipeline_root", "Trainer", "model_run", "*",
                                          "training_summary.json")))
    if not found:
        return None
    with open(found[-1]) as f:
        return json.load(f).get("seconds")


def _median_run(runs, key=lambda r: r["seconds"]):
    """The run with the median wall time (its RSS, components etc. come with it)."""
    ordered = sorted(runs, key=key)
    best = dict(ordered[len(ordered) // 2])
    best["all_seconds"] = [r["seconds"] for r in runs]
    best["max_peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
    return best


def bench_size(n: int, work: str, epochs: str, batch: str, repeat: int):
    csv = os.path.join(work, f"synth_{n}.csv")
    t = time.time()
    generate_csv(csv, n)
    print(f"[{n}] generated in {time.time() - t:.1f}s", file=sys.stderr)
    cli = os.path.join(VENV_BIN, "anomaly-pipeline")
    pipes, plains, scores, plain_scores = [], [], [], []
    plain_model = os.path.join(work, f"plain_{n}.keras")
    model = None
    for i in range(repeat):  # interleaved, so load on the machine hits both sides alike
        out = os.path.join(work, f"out_{n}_{i}")
        pipe = timed([cli, "run", "--data", csv, "--label-column", "label", "--output", out,
                      "--epochs", epochs, "--batch-size", batch, "--no-cache",
                      # One model, as the plain script trains: with labels, model
                      # selection would train one model per candidate (3x the fit).
                      "--no-model-selection"])
        pipe["components"] = component_seconds(os.path.join(out, "metadata.sqlite"))
        pipe["outside_components"] = round(pipe["seconds"] - sum(pipe["components"].values()), 2)
        pipe["trainer"] = trainer_seconds(out)
        pipes.append(pipe)
        print(f"[{n}] pipeline {pipe['seconds']}s {pipe['components']}", file=sys.stderr)
        plain = timed([sys.executable, os.path.join(HERE, "plain_recipe.py"), "train", csv,
                       plain_model, epochs, batch])
        plains.append(plain)
        print(f"[{n}] plain {plain['seconds']}s", file=sys.stderr)
        model = pipe["result"].get("pushed_model") or model
        if model:
            sc = timed([cli, "score", "--model", model, "--input", csv, "--output",
                        os.path.join(work, "s.csv")])
            sc["rows_per_second"] = round(n / sc["seconds"], 1)
            scores.append(sc)
        ps = timed([sys.executable, os.path.join(HERE, "plain_recipe.py"), "score", csv,
                    plain_model, os.path.join(work, "p.csv")])
        ps["rows_per_second"] = round(n / ps["seconds"], 1)
        plain_scores.append(ps)
        if not os.environ.get("KEEP") and i < repeat - 1:
            shutil.rmtree(out, ignore_errors=True)
    pipe, plain = _median_run(pipes), _median_run(plains)
    entry = {
        "rows": n,
        "repeat": repeat,
        "pipeline": pipe,
        "plain": plain,
        "ratio_pipeline_over_plain": round(pipe["seconds"] / plain["seconds"], 2),
        "score": _median_run(scores) if scores else None,
        "plain_score": _median_run(plain_scores),
    }
    if not os.environ.get("KEEP"):
        for i in range(repeat):
            shutil.rmtree(os.path.join(work, f"out_{n}_{i}"), ignore_errors=True)
        os.remove(csv)
    return entry


def main():
    sizes = [int(s) for s in os.environ.get("SIZES", "10000,100000,1000000").split(",")]
    epochs, batch = os.environ.get("EPOCHS", "5"), os.environ.get("BATCH", "1024")
    repeat = max(1, int(os.environ.get("REPEAT", "3")))
    work = tempfile.mkdtemp(prefix="bench-perf-")
    os.makedirs(RESULTS, exist_ok=True)
    report = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
              "generated": time.strftime("%Y-%m-%d %H:%M:%S"),
              "epochs": int(epochs), "batch_size": int(batch), "repeat": repeat, "sizes": []}
    try:
        for n in sizes:
            report["sizes"].append(bench_size(n, work, epochs, batch, repeat))
            with open(os.path.join(RESULTS, "perf.json"), "w") as f:
                json.dump(report, f, indent=2, sort_keys=True)
        by_rows = {s["rows"]: s for s in report["sizes"]}
        if 100_000 in by_rows and 1_000_000 in by_rows:
            report["rss_1m_over_100k"] = round(
                by_rows[1_000_000]["pipeline"]["max_peak_rss_mb"]
                / by_rows[100_000]["pipeline"]["max_peak_rss_mb"], 2)
        report["goals"] = goals(by_rows)
        with open(os.path.join(RESULTS, "perf.json"), "w") as f:
            json.dump(report, f, indent=2, sort_keys=True)
        with open(os.path.join(RESULTS, "perf.md"), "w") as f:
            f.write(markdown(report))
        print(markdown(report))
    finally:
        if not os.environ.get("KEEP"):
            shutil.rmtree(work, ignore_errors=True)


def goals(by_rows):
    """The issue's three goals, each with its measured value (None = size not run)."""
    big, mid = by_rows.get(1_000_000), by_rows.get(100_000)
    out = {}
    if big:
        r = big["ratio_pipeline_over_plain"]
        out["time_1m_pipeline_over_plain_at_most_1.5"] = {"value": r, "met": r <= 1.5}
        if big["score"]:
            v = round(big["score"]["rows_per_second"] / big["plain_score"]["rows_per_second"], 2)
            out["score_1m_rows_per_s_over_plain_at_least_1"] = {"value": v, "met": v >= 1.0}
    if big and mid:
        v = round(big["pipeline"]["max_peak_rss_mb"] / mid["pipeline"]["max_peak_rss_mb"], 2)
        out["rss_1m_over_100k_at_most_1.5"] = {"value": v, "met": v <= 1.5}
    return out


def markdown(report) -> str:
    lines = [f"Generated by `make bench` on {report.get('generated', '?')}: epochs "
             f"{report['epochs']}, batch {report['batch_size']}, {report['machine']['cpus']} CPUs, "
             f"median of {report.get('repeat', 1)} interleaved runs per size (all runs in "
             f"perf.json). Peak RSS: the whole process tree, the largest of the runs.", "",
             "| rows | pipeline s | plain s | ratio | pipeline − plain s | pipeline peak RSS MB "
             "| plain peak RSS MB | score rows/s | plain score rows/s |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in report["sizes"]:
        sc = s["score"]["rows_per_second"] if s["score"] else "-"
        lines.append(f"| {s['rows']:,} | {s['pipeline']['seconds']} | {s['plain']['seconds']} "
                     f"| {s['ratio_pipeline_over_plain']} "
                     f"| {s['pipeline']['seconds'] - s['plain']['seconds']:.1f} "
                     f"| {s['pipeline'].get('max_peak_rss_mb', s['pipeline']['peak_rss_mb'])} "
                     f"| {s['plain'].get('max_peak_rss_mb', s['plain']['peak_rss_mb'])} | {sc} "
                     f"| {s['plain_score']['rows_per_second']} |")
    lines += ["", "Per-component seconds (ML Metadata) of the median pipeline run, the time "
              "outside components (start-up, imports, input checks, orchestration), and the "
              "Trainer's own breakdown:", ""]
    for s in report["sizes"]:
        p = s["pipeline"]
        comps = ", ".join(f"{k} {v}" for k, v in sorted(p["components"].items()) if v >= 0.1)
        trainer = ", ".join(f"{k} {v}" for k, v in (p.get("trainer") or {}).items())
        lines.append(f"- {s['rows']:,} rows: {comps}; outside components "
                     f"{p.get('outside_components', '?')}; Trainer: {trainer}")
    if "rss_1m_over_100k" in report:
        lines.append(f"\nPipeline peak RSS 1M / 100k: {report['rss_1m_over_100k']}")
    if report.get("goals"):
        lines += ["", "Goals:", ""] + [
            f"- {k}: {g['value']} -> {'met' if g['met'] else 'NOT met'}"
            for k, g in report["goals"].items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
