"""`make bench`: pipeline vs the plain-script recipe at 10k / 100k / 1M rows.

For each size, in the same run and on the same generated CSV (20 features, 1%
injected anomalies, a label column):
- the pipeline end to end through the CLI (`anomaly-pipeline run`): wall time,
  peak RSS of the whole process tree, per-component seconds from ML Metadata;
- the reference recipe as a plain script (bench/plain_recipe.py: pandas read,
  StandardScaler, the same Keras model, same epochs and batch size, predict,
  threshold): wall time and peak RSS;
- `anomaly-pipeline score` (CSV in -> CSV out) vs a plain pandas + Keras
  predict script on the same CSV: rows/s.
Writes bench/results/perf.json and bench/results/perf.md. Not a test: nothing
here asserts on time.

Env: SIZES=10000,100000,1000000  EPOCHS=5  BATCH=1024  KEEP=1 (keep outputs)
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


def main():
    sizes = [int(s) for s in os.environ.get("SIZES", "10000,100000,1000000").split(",")]
    epochs, batch = os.environ.get("EPOCHS", "5"), os.environ.get("BATCH", "1024")
    work = tempfile.mkdtemp(prefix="bench-perf-")
    os.makedirs(RESULTS, exist_ok=True)
    report = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
              "epochs": int(epochs), "batch_size": int(batch), "sizes": []}
    try:
        for n in sizes:
            csv = os.path.join(work, f"synth_{n}.csv")
            t = time.time()
            generate_csv(csv, n)
            print(f"[{n}] generated in {time.time() - t:.1f}s", file=sys.stderr)
            out = os.path.join(work, f"out_{n}")
            pipe = timed([os.path.join(VENV_BIN, "anomaly-pipeline"), "run", "--data", csv,
                          "--label-column", "label", "--output", out, "--epochs", epochs,
                          "--batch-size", batch, "--no-cache"])
            pipe["components"] = component_seconds(os.path.join(out, "metadata.sqlite"))
            print(f"[{n}] pipeline {pipe['seconds']}s {pipe['components']}", file=sys.stderr)
            plain_model = os.path.join(work, f"plain_{n}.keras")
            plain = timed([sys.executable, os.path.join(HERE, "plain_recipe.py"), "train", csv,
                           plain_model, epochs, batch])
            print(f"[{n}] plain {plain['seconds']}s", file=sys.stderr)
            model = pipe["result"].get("pushed_model")
            score = plain_score = None
            if model:
                score = timed([os.path.join(VENV_BIN, "anomaly-pipeline"), "score", "--model",
                               model, "--input", csv, "--output", os.path.join(work, "s.csv")])
                score["rows_per_second"] = round(n / score["seconds"], 1)
            plain_score = timed([sys.executable, os.path.join(HERE, "plain_recipe.py"), "score",
                                 csv, plain_model, os.path.join(work, "p.csv")])
            plain_score["rows_per_second"] = round(n / plain_score["seconds"], 1)
            report["sizes"].append({
                "rows": n,
                "pipeline": pipe,
                "plain": plain,
                "ratio_pipeline_over_plain": round(pipe["seconds"] / plain["seconds"], 2),
                "score": score,
                "plain_score": plain_score,
            })
            with open(os.path.join(RESULTS, "perf.json"), "w") as f:
                json.dump(report, f, indent=2, sort_keys=True)
            if not os.environ.get("KEEP"):
                shutil.rmtree(out, ignore_errors=True)
                os.remove(csv)
        by_rows = {s["rows"]: s for s in report["sizes"]}
        if 100_000 in by_rows and 1_000_000 in by_rows:
            report["rss_1m_over_100k"] = round(
                by_rows[1_000_000]["pipeline"]["peak_rss_mb"]
                / by_rows[100_000]["pipeline"]["peak_rss_mb"], 2)
        with open(os.path.join(RESULTS, "perf.json"), "w") as f:
            json.dump(report, f, indent=2, sort_keys=True)
        with open(os.path.join(RESULTS, "perf.md"), "w") as f:
            f.write(markdown(report))
        print(markdown(report))
    finally:
        if not os.environ.get("KEEP"):
            shutil.rmtree(work, ignore_errors=True)


def markdown(report) -> str:
    lines = [f"epochs {report['epochs']}, batch {report['batch_size']}, "
             f"{report['machine']['cpus']} CPUs", "",
             "| rows | pipeline s | plain s | ratio | pipeline peak RSS MB | plain peak RSS MB "
             "| score rows/s | plain score rows/s |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in report["sizes"]:
        sc = s["score"]["rows_per_second"] if s["score"] else "-"
        lines.append(f"| {s['rows']:,} | {s['pipeline']['seconds']} | {s['plain']['seconds']} "
                     f"| {s['ratio_pipeline_over_plain']} | {s['pipeline']['peak_rss_mb']} "
                     f"| {s['plain']['peak_rss_mb']} | {sc} "
                     f"| {s['plain_score']['rows_per_second']} |")
    lines += ["", "Per-component seconds (ML Metadata):", ""]
    for s in report["sizes"]:
        comps = ", ".join(f"{k} {v}" for k, v in sorted(s["pipeline"]["components"].items()))
        lines.append(f"- {s['rows']:,} rows: {comps}")
    if "rss_1m_over_100k" in report:
        lines.append(f"\nPipeline peak RSS 1M / 100k: {report['rss_1m_over_100k']}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
