"""Detection-quality benchmark (`make bench-quality`; not a test).

For every labeled CSV in DATA_DIR (header f0..f{d-1},label; 1 = anomaly) and
every seed: a stratified 70/30 split; the pipeline runs through the CLI on the
70 % part (`anomaly-pipeline run --label-column label`, so it trains on its
normal rows) and the pushed model scores the 30 % part through
`anomaly-pipeline score`. On the same rows, in the same run:
- sklearn IsolationForest, default parameters, random_state=seed, fitted on
  the normal rows of the 70 % part; its flag is its own `predict`;
- the reference recipe as a plain Keras script: StandardScaler, Dense(round(0.7 d),
  relu) -> Dense(d, sigmoid), Adam + MSE, 50 epochs, batch 32,
  validation_split 0.2, threshold mean + 3 std of its training errors.
ROC-AUC, PR-AUC (average precision) and F1 at each method's own threshold go to
bench/results/quality.json and bench/results/quality.md, per dataset (mean over
seeds) and averaged over datasets.

Environment: DATA_DIR (default ../shared/data relative to the repository),
DATASETS=cardio,thyroid (subset), SEEDS=0,1,2, RUN_ARGS="--preset seed" (extra
`run` flags, e.g. to benchmark another configuration), RESULTS_DIR
(default bench/results), KEEP=1 keeps the per-run output directories.
One pipeline runs at a time (the machine has 2 cores).
"""
import glob
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = os.path.join(ROOT, ".venv", "bin", "anomaly-pipeline")
METHODS = ("pipeline", "iforest", "recipe")
METRICS = ("roc_auc", "pr_auc", "f1")
LABEL = "label"


# ----------------------------------------------------------------------------- baselines
def isolation_forest(x_normal: np.ndarray, x_test: np.ndarray, seed: int) -> Dict[str, np.ndarray]:
    """sklearn IsolationForest with default parameters; higher score = more anomalous."""
    from sklearn.ensemble import IsolationForest

    forest = IsolationForest(random_state=seed).fit(x_normal)
    return {"score": -forest.score_samples(x_test), "flag": forest.predict(x_test) == -1}


def seed_recipe(x_normal: np.ndarray, x_test: np.ndarray, seed: int,
                epochs: int = 50) -> Dict[str, np.ndarray]:
    """The reference notebook recipe, as a plain Keras script."""
    import keras
    from sklearn.preprocessing import StandardScaler

    keras.utils.set_random_seed(seed)
    scaler = StandardScaler().fit(x_normal)
    x_train = scaler.transform(x_normal).astype("float32")
    d = x_train.shape[1]
    model = keras.Sequential([
        keras.Input(shape=(d,)),
        keras.layers.Dense(int(round(0.7 * d)), activation="relu"),
        keras.layers.Dense(d, activation="sigmoid"),
    ])
    model.compile(optimizer="adam", loss="mse")
    model.fit(x_train, x_train, epochs=epochs, batch_size=32, validation_split=0.2,
              shuffle=True, verbose=0)

    def errors(x):
        return np.mean((x - model.predict(x, batch_size=4096, verbose=0)) ** 2, axis=1)

    train_err = errors(x_train)
    threshold = float(train_err.mean() + 3 * train_err.std())
    test_err = errors(scaler.transform(x_test).astype("float32"))
    return {"score": test_err, "flag": test_err > threshold, "threshold": threshold}


def scores(y: np.ndarray, score: np.ndarray, flag: np.ndarray) -> Dict[str, float]:
    from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

    return {"roc_auc": float(roc_auc_score(y, score)),
            "pr_auc": float(average_precision_score(y, score)),
            "f1": float(f1_score(y, np.asarray(flag).astype(int), zero_division=0)),
            "flagged": int(np.sum(flag))}


# ----------------------------------------------------------------------------- pipeline
RETRIES: List[str] = []  # runs killed by a signal and retried once, reported in quality.json


def _cli(args: List[str], log_path: str) -> Dict[str, Any]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    for attempt in range(2):
        with open(log_path, "a") as log:
            proc = subprocess.run([CLI, *args], stdout=subprocess.PIPE, stderr=log, text=True,
                                  cwd=ROOT, env=env)
        if proc.returncode >= 0 or attempt:
            break
        # Killed by a signal (e.g. SIGABRT from a native library): one retry, recorded.
        RETRIES.append(f"{' '.join(args[:3])}: signal {-proc.returncode}")
    if proc.returncode != 0:
        raise RuntimeError(f"anomaly-pipeline {args[0]} exited {proc.returncode}; see {log_path}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_pipeline(train_csv: str, test_csv: str, work: str, extra: List[str]) -> Dict[str, Any]:
    import pandas as pd

    out = os.path.join(work, "out")
    log = os.path.join(work, "pipeline.log")
    started = time.time()
    summary = _cli(["run", "--data", train_csv, "--label-column", LABEL, "--output", out,
                    *extra], log)
    model = summary.get("pushed_model")
    if not model:
        raise RuntimeError("the pipeline pushed no model: " + "; ".join(summary.get("reasons", [])))
    scored_csv = os.path.join(work, "scored.csv")
    _cli(["score", "--model", model, "--input", test_csv, "--output", scored_csv], log)
    scored = pd.read_csv(scored_csv)
    return {"score": scored["reconstruction_error"].to_numpy(),
            "flag": scored["is_anomaly"].to_numpy().astype(bool),
            "threshold": summary["threshold"], "threshold_method": summary["threshold_method"],
            "threshold_rule": summary.get("threshold_rule"),
            "model_selection": summary.get("model_selection"),
            "eval_metrics": summary.get("metrics", {}), "epochs_run": summary.get("epochs_run"),
            "seconds": round(time.time() - started, 1),
            "report": summary.get("report")}


def one_split(csv_path: str, seed: int, extra: List[str], keep: bool) -> Dict[str, Any]:
    import pandas as pd
    from sklearn.model_selection import train_test_split

    df = pd.read_csv(csv_path)
    train, test = train_test_split(df, test_size=0.3, stratify=df[LABEL], random_state=seed)
    # A failed split keeps its directory (inputs, pipeline.log) for inspection.
    work = tempfile.mkdtemp(prefix=f"bench-quality-{os.path.basename(csv_path)[:-4]}-{seed}-")
    train_csv, test_csv = os.path.join(work, "train70.csv"), os.path.join(work, "test30.csv")
    train.to_csv(train_csv, index=False)
    test.to_csv(test_csv, index=False)
    y = test[LABEL].to_numpy().astype(int)
    features = [c for c in df.columns if c != LABEL]
    x_normal = train.loc[train[LABEL] == 0, features].to_numpy(np.float64)
    x_test = test[features].to_numpy(np.float64)

    result: Dict[str, Any] = {"seed": seed, "train_rows": len(train), "test_rows": len(test),
                              "test_anomalies": int(y.sum())}
    pipe = run_pipeline(train_csv, test_csv, work, extra)
    result["pipeline"] = dict(scores(y, pipe["score"], pipe["flag"]),
                              threshold=pipe["threshold"],
                              threshold_method=pipe["threshold_method"],
                              threshold_rule=pipe["threshold_rule"],
                              chosen=_chosen(pipe["model_selection"]),
                              epochs_run=pipe["epochs_run"], seconds=pipe["seconds"],
                              eval_split=pipe["eval_metrics"])
    t0 = time.time()
    forest = isolation_forest(x_normal, x_test, seed)
    result["iforest"] = dict(scores(y, forest["score"], forest["flag"]),
                             seconds=round(time.time() - t0, 1))
    t0 = time.time()
    recipe = seed_recipe(x_normal, x_test, seed)
    result["recipe"] = dict(scores(y, recipe["score"], recipe["flag"]),
                            threshold=recipe["threshold"], seconds=round(time.time() - t0, 1))
    if keep:
        result["work_dir"] = work
    else:
        shutil.rmtree(work, ignore_errors=True)
    return result


def _chosen(selection) -> str:
    """The model-selection candidate the pipeline kept, in words."""
    if not selection:
        return "as configured"
    from components.model.settings import describe_candidate

    return describe_candidate(selection.get("chosen") or {})


# ----------------------------------------------------------------------------- reporting
def _mean(values):
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def aggregate(per_dataset: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    for entry in per_dataset.values():
        runs = [r for r in entry["seeds"] if "error" not in r]
        entry["mean"] = {m: {k: _mean([r[m][k] for r in runs]) for k in METRICS}
                         for m in METHODS} if runs else None
        entry["std"] = {m: {k: float(np.std([r[m][k] for r in runs])) for k in METRICS}
                        for m in METHODS} if runs else None
    done = {n: e for n, e in per_dataset.items() if e["mean"]}
    overall = {m: {k: _mean([e["mean"][m][k] for e in done.values()]) for k in METRICS}
               for m in METHODS} if done else None
    return {"datasets_complete": sorted(done), "mean": overall}


def markdown(doc: Dict[str, Any]) -> str:
    cols = [(m, k) for k in METRICS for m in METHODS]
    head = " | ".join(f"{k.replace('_', '-').upper()} {m}" for m, k in cols)
    lines = [
        "# Detection quality: pipeline (default configuration) vs IsolationForest vs reference recipe",
        "",
        f"Generated by `make bench-quality` on {doc['generated']}; seeds {doc['seeds']}; "
        f"extra run flags: `{' '.join(doc['run_args']) or '(none)'}`. Stratified 70/30 split per "
        "seed; everything fitted on the normal rows of the 70 % part, scored on the 30 % part. "
        "F1 is at each method's own threshold: the pipeline's pushed threshold, the recipe's "
        "mean + 3·std of its training errors, IsolationForest's default `predict`. "
        "Values are means over seeds (± std for ROC-AUC).",
        "",
        f"| dataset | rows | d | anomalies | {head} | pipeline s/run | model kept (per seed) |",
        "|---|---:|---:|---:|" + "---:|" * len(cols) + "---:|---|",
    ]
    for name, e in doc["datasets"].items():
        if not e["mean"]:
            lines.append(f"| {name} | {e['rows']} | {e['features']} | | failed: "
                         + "; ".join(r.get("error", "") for r in e["seeds"])[:200] + " |")
            continue
        cells = []
        for m, k in cols:
            v = e["mean"][m][k]
            cells.append(f"{v:.4f}" + (f" ±{e['std'][m][k]:.3f}" if k == "roc_auc" else ""))
        secs = _mean([r["pipeline"]["seconds"] for r in e["seeds"] if "pipeline" in r])
        kept = "; ".join(r["pipeline"].get("chosen", "?") for r in e["seeds"] if "pipeline" in r)
        lines.append(f"| {name} | {e['rows']} | {e['features']} | {e['anomaly_rate']:.2%} | "
                     + " | ".join(cells) + f" | {secs:.0f} | {kept} |")
    if doc["summary"]["mean"]:
        mean = doc["summary"]["mean"]
        lines.append(f"| **mean ({len(doc['summary']['datasets_complete'])} datasets)** | | | | "
                     + " | ".join(f"**{mean[m][k]:.4f}**" for m, k in cols) + " | | |")
        p, f, r = mean["pipeline"], mean["iforest"], mean["recipe"]
        lines += ["",
                  f"- mean ROC-AUC: pipeline {p['roc_auc']:.4f} vs IsolationForest "
                  f"{f['roc_auc']:.4f} -> goal (>=) "
                  f"{'met' if p['roc_auc'] >= f['roc_auc'] else 'NOT met'}",
                  f"- mean F1 at the chosen threshold: pipeline {p['f1']:.4f} vs seed rule "
                  f"(recipe, mean+3·std) {r['f1']:.4f} -> goal (>) "
                  f"{'met' if p['f1'] > r['f1'] else 'NOT met'}"]
    failed = [(n, r) for n, e in doc["datasets"].items() for r in e["seeds"] if "error" in r]
    for n, r in failed:
        lines.append(f"- {n} seed {r['seed']} failed: {r['error']}")
    return "\n".join(lines) + "\n"


def main() -> int:
    import pandas as pd

    data_dir = os.path.abspath(os.environ.get("DATA_DIR") or os.path.join(ROOT, "..", "shared",
                                                                           "data"))
    out_dir = os.path.abspath(os.environ.get("RESULTS_DIR") or os.path.join(ROOT, "bench",
                                                                             "results"))
    wanted = [s for s in os.environ.get("DATASETS", "").split(",") if s.strip()]
    seeds = [int(s) for s in (os.environ.get("SEEDS") or "0,1,2").split(",") if s.strip()]
    extra = shlex.split(os.environ.get("RUN_ARGS", ""))
    keep = os.environ.get("KEEP", "") not in ("", "0")
    if not os.path.exists(CLI):
        print(f"error: {CLI} not found; run `make venv` first", file=sys.stderr)
        return 2
    files = sorted(glob.glob(os.path.join(data_dir, "*.csv")))
    if wanted:
        files = [f for f in files if os.path.basename(f)[:-4] in wanted]
        missing = set(wanted) - {os.path.basename(f)[:-4] for f in files}
        if missing:
            print(f"error: {data_dir}: no such dataset(s): {', '.join(sorted(missing))}",
                  file=sys.stderr)
            return 2
    if not files:
        print(f"error: {data_dir}: no labeled CSV files", file=sys.stderr)
        return 2
    os.makedirs(out_dir, exist_ok=True)
    doc: Dict[str, Any] = {
        "generated": time.strftime("%Y-%m-%d %H:%M:%S"), "data_dir": data_dir, "seeds": seeds,
        "run_args": extra, "protocol": __doc__.split("\n\n")[1], "datasets": {}}
    started = time.time()
    for path in files:
        name = os.path.basename(path)[:-4]
        labels = pd.read_csv(path, usecols=[LABEL])[LABEL]
        entry = doc["datasets"][name] = {
            "rows": int(len(labels)), "features": int(len(pd.read_csv(path, nrows=0).columns) - 1),
            "anomaly_rate": float(labels.mean()), "seeds": []}
        for seed in seeds:
            t0 = time.time()
            try:
                r = one_split(path, seed, extra, keep)
            except Exception as e:  # noqa: BLE001 - record and go on with the next split
                r = {"seed": seed, "error": f"{type(e).__name__}: {e}"}
            entry["seeds"].append(r)
            line = {m: {k: round(r[m][k], 4) for k in METRICS} for m in METHODS if m in r}
            print(f"{name} seed={seed} ({time.time() - t0:.0f}s): "
                  f"{json.dumps(line) if line else r.get('error')}", flush=True)
            doc["summary"] = aggregate(doc["datasets"])
            doc["retried_runs"] = list(RETRIES)
            doc["seconds"] = round(time.time() - started, 1)
            with open(os.path.join(out_dir, "quality.json"), "w") as f:
                json.dump(doc, f, indent=2, sort_keys=False)
            with open(os.path.join(out_dir, "quality.md"), "w") as f:
                f.write(markdown(doc))
    print(open(os.path.join(out_dir, "quality.md")).read())
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.exit(main())
