"""Benchmark: `anomaly-pipeline score` on a large generated CSV: peak memory and rows/s.

    .venv/bin/python bench/score_memory.py                 # 1,000,000 x 20, writes
                                                           # bench/results/score_memory.json
    .venv/bin/python bench/score_memory.py --rows 5000000 --baseline

1. Generates `--rows` x `--features` raw float features plus a 0/1 `label`
   (normal rows near a low-rank subspace, ~2% outliers) into `--work`, once
   (reused when present).
2. Trains a model with the real pipeline on the first 5,000 rows (`--epochs 2`),
   unless `--model DIR` is given.
3. Runs `anomaly-pipeline score` as a child process and samples the RSS of
   its whole process tree every 50 ms (psutil); the peak is also taken from
   getrusage(RUSAGE_CHILDREN).ru_maxrss. Wall time includes start-up (imports,
   model load, input check); a warm-up run on 1,000 rows comes first.
4. `--baseline`: the same scoring as a plain script (pandas.read_csv of the
   whole file, one SavedModel call, DataFrame.to_csv), for comparison.

Not a test: nothing here is timed against a limit; the JSON records what was
measured, on which machine.
"""
import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV_BIN = os.path.dirname(sys.executable)
RESULTS = os.path.join(ROOT, "bench", "results")


def generate(path: str, rows: int, n_features: int, seed: int = 0, block: int = 200_000):
    import pyarrow as pa
    import pyarrow.csv as pcsv

    rng = np.random.default_rng(seed)
    rank = max(2, n_features // 4)
    mix = rng.normal(size=(rank, n_features))
    names = [f"f{i}" for i in range(n_features)]
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write((",".join(names + ["label"]) + "\n").encode())
        done = 0
        while done < rows:
            n = min(block, rows - done)
            x = rng.normal(size=(n, rank)) @ mix + 0.1 * rng.normal(size=(n, n_features))
            label = (rng.random(n) < 0.02).astype(np.int64)
            x[label == 1] += rng.uniform(-6, 6, size=(int(label.sum()), n_features))
            x = x * 10 + 50
            table = pa.table({**{k: np.round(x[:, i], 6) for i, k in enumerate(names)},
                              "label": label})
            pcsv.write_csv(table, f, pcsv.WriteOptions(include_header=False))
            done += n
    os.replace(tmp, path)


def train(data: str, work: str, env: dict) -> str:
    small = os.path.join(work, "train_5000.csv")
    with open(data, "rb") as src, open(small, "wb") as dst:
        for _ in range(5001):
            dst.write(src.readline())
    out = os.path.join(work, "run")
    proc = subprocess.run([os.path.join(VENV_BIN, "anomaly-pipeline"), "run", "--data", small,
                           "--label-column", "label", "--output", out, "--epochs", "2"],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"training failed:\n{proc.stderr[-3000:]}")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    if not summary["pushed_model"]:
        sys.exit(f"the model was not pushed: {summary['reasons']}")
    return summary["pushed_model"]


_WRAPPER = ("import resource, subprocess, sys; rc = subprocess.call(sys.argv[2:]); "
            "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN)"
            ".ru_maxrss)); sys.exit(rc)")


def child_env(work: str) -> dict:
    """Children import with a warm bytecode cache (as after any first run): when
    PYTHONDONTWRITEBYTECODE is set, TensorFlow's modules would be compiled from
    source on every start (~10 s CPU), which no real installation pays."""
    env = dict(os.environ)
    if env.pop("PYTHONDONTWRITEBYTECODE", None):
        env.setdefault("PYTHONPYCACHEPREFIX", os.path.join(work, "pycache"))
    return env


def measure(cmd, env=None):
    """Runs cmd; returns (seconds, peak tree RSS sampled, peak RSS from ru_maxrss, stdout).

    ru_maxrss comes from a fresh wrapper process, so earlier children (the
    training run) do not count.
    """
    import psutil

    with tempfile.NamedTemporaryFile("r", suffix=".maxrss") as box:
        started = time.time()
        proc = subprocess.Popen([sys.executable, "-c", _WRAPPER, box.name, *cmd],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        ps = psutil.Process(proc.pid)
        peak = 0
        while proc.poll() is None:
            try:
                rss = sum(c.memory_info().rss for c in ps.children(recursive=True))
                peak = max(peak, rss)
            except psutil.Error:
                pass
            time.sleep(0.05)
        out, err = proc.communicate()
        seconds = time.time() - started
        if proc.returncode != 0:
            sys.exit(f"{cmd[0]} failed ({proc.returncode}):\n{err.decode()[-3000:]}")
        maxrss = int(open(box.name).read() or 0) * 1024
    return seconds, peak, maxrss, out.decode()


BASELINE = textwrap.dedent("""
    import json, sys, numpy as np, pandas as pd, tensorflow as tf
    model, src, dst = sys.argv[1:4]
    feats = json.load(open(model + "/assets/model_metadata.json"))["features"]
    df = pd.read_csv(src)
    m = tf.saved_model.load(model)
    out = m.signatures["score_features"](features=tf.constant(df[feats].to_numpy(np.float32)))
    df["reconstruction_error"] = out["reconstruction_error"].numpy()
    df["is_anomaly"] = out["is_anomaly"].numpy().astype(np.int8)
    df.to_csv(dst, index=False)
""")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--features", type=int, default=20)
    p.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "anomaly-bench-score"))
    p.add_argument("--model", help="SavedModel dir (default: train one on 5,000 rows)")
    p.add_argument("--batch-size", type=int, help="score --batch-size (rows per chunk)")
    p.add_argument("--beam-arg", action="append", default=[])
    p.add_argument("--baseline", action="store_true", help="also time a plain pandas script")
    p.add_argument("--keep-output", action="store_true")
    p.add_argument("--result", default=os.path.join(RESULTS, "score_memory.json"))
    a = p.parse_args()

    os.makedirs(a.work, exist_ok=True)
    data = os.path.join(a.work, f"input_{a.rows}x{a.features}.csv")
    if not os.path.exists(data):
        t = time.time()
        generate(data, a.rows, a.features)
        print(f"generated {data} in {time.time() - t:.1f} s", file=sys.stderr)
    env = child_env(a.work)
    model = a.model or train(data, a.work, env)
    out_csv = os.path.join(a.work, "scored.csv")
    cmd = [os.path.join(VENV_BIN, "anomaly-pipeline"), "score", "--model", model,
           "--input", data, "--output", out_csv]
    if a.batch_size:
        cmd += ["--batch-size", str(a.batch_size)]
    cmd += [f"--beam-arg={b}" for b in a.beam_arg]
    # Warm-up on the first 1,000 rows (bytecode and page caches), not measured.
    warm = os.path.join(a.work, "warmup.csv")
    with open(data, "rb") as src, open(warm, "wb") as dst:
        for _ in range(1001):
            dst.write(src.readline())
    measure(cmd[:cmd.index("--input") + 1] + [warm, "--output", warm + ".out"] +
            cmd[cmd.index("--output") + 2:], env)
    for path in (warm, warm + ".out"):
        os.remove(path)
    seconds, peak, maxrss, out = measure(cmd, env)
    stats = json.loads(out.strip().splitlines()[-1])
    with open(out_csv, "rb") as f:
        out_lines = sum(block.count(b"\n") for block in iter(lambda: f.read(1 << 24), b""))
    result = {
        "command": " ".join(cmd),
        "rows": stats["rows"], "features": a.features,
        "input_bytes": os.path.getsize(data),
        "output_rows": out_lines - 1,
        "wall_seconds": round(seconds, 2),
        "rows_per_second_wall": round(stats["rows"] / seconds, 1),
        "score_seconds": stats["seconds"],
        "rows_per_second_reported": stats["rows_per_second"],
        "chunks": stats["chunks"],
        "peak_rss_mb_sampled": round(peak / 2 ** 20, 1),
        "peak_rss_mb_ru_maxrss": round(maxrss / 2 ** 20, 1) if maxrss else None,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "python": platform.python_version(),
                    "load_average_1m_at_end": round(os.getloadavg()[0], 2)},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    if not a.keep_output:
        os.remove(out_csv)
    if a.baseline:
        base_out = os.path.join(a.work, "baseline.csv")
        b_seconds, b_peak, b_maxrss, _ = measure([sys.executable, "-c", BASELINE, model, data,
                                                  base_out], env)
        os.remove(base_out)
        result["baseline_plain_pandas"] = {
            "wall_seconds": round(b_seconds, 2),
            "rows_per_second_wall": round(stats["rows"] / b_seconds, 1),
            "peak_rss_mb_sampled": round(b_peak / 2 ** 20, 1),
            "peak_rss_mb_ru_maxrss": round(b_maxrss / 2 ** 20, 1) if b_maxrss else None,
        }
    os.makedirs(os.path.dirname(os.path.abspath(a.result)), exist_ok=True)
    with open(a.result, "w") as f:
        json.dump(result, f, indent=2, sort_keys=True)
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
