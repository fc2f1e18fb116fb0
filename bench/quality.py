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

Variants (VARIANTS, default numeric,mixed): `numeric` is the above; `mixed` takes the
same split and seed, turns both parts into user-shaped tables with
bench/mixed_tables.py (string ids first, ISO timestamps, string categorical columns,
empty cells in ~10 % of rows; the column choices and bins fitted on the 70 % part) and
runs `anomaly-pipeline run --data T --label-column label` with no column flag (plus
RUN_ARGS, as the numeric run), then `score` on the 30 % part. Recorded: blessed, whether
the scored output's id column equals the input's in order, ROC-AUC / PR-AUC / F1 on the
30 % part, the ROC-AUC delta vs the numeric pipeline on the same dataset and seed, the
roles the run inferred (the summary's `columns`) and what the converter did.

Environment: DATA_DIR (default ../shared/data relative to the repository),
DATASETS=cardio,thyroid (subset), SEEDS=0,1,2, VARIANTS=numeric,mixed,
RUN_ARGS="--preset seed" (extra `run` flags for both variants, e.g. to benchmark another
configuration; none by default), NUMERIC_FROM=path/quality.json (with VARIANTS=mixed: the
numeric pipeline ROC-AUC of the same dataset and seed for the delta, from an earlier
run), MIXED_PARTS=coded,binned,noise,missing (what the mixed
converter does, for ablations; ids and timestamps are always there), RESULTS_DIR
(default bench/results), KEEP=1 keeps the per-run output directories. The CLI is
.venv/bin/anomaly-pipeline, or `python -m pipeline.cli` of this interpreter (with the
repository first on PYTHONPATH) when there is no .venv here.
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
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
from bench.mixed_tables import ID_COLUMN, PARTS, fit_spec, to_user_table  # noqa: E402

CLI = os.path.join(ROOT, ".venv", "bin", "anomaly-pipeline")
METHODS = ("pipeline", "iforest", "recipe")
METRICS = ("roc_auc", "pr_auc", "f1")
LABEL = "label"
VARIANTS = ("numeric", "mixed")
MAX_DELTA = 0.03  # the acceptance bound: mixed ROC-AUC within this of the numeric one


def cli_command() -> List[str]:
    if os.path.exists(CLI):
        return [CLI]
    return [sys.executable, "-m", "pipeline.cli"]


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
    env["PYTHONPATH"] = os.pathsep.join([ROOT] + [p for p in env.get("PYTHONPATH", "").split(
        os.pathsep) if p and os.path.abspath(p) != ROOT])
    for attempt in range(2):
        with open(log_path, "a") as log:
            proc = subprocess.run([*cli_command(), *args], stdout=subprocess.PIPE, stderr=log,
                                  text=True, cwd=ROOT, env=env)
        if proc.returncode >= 0 or attempt:
            break
        # Killed by a signal (e.g. SIGABRT from a native library): one retry, recorded.
        RETRIES.append(f"{' '.join(args[:3])}: signal {-proc.returncode}")
    if proc.returncode != 0:
        raise RuntimeError(f"anomaly-pipeline {args[0]} exited {proc.returncode}; see {log_path}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_pipeline(train_csv: str, test_csv: str, work: str, extra: List[str],
                 id_column: Optional[str] = None) -> Dict[str, Any]:
    """`run` on train_csv into work/out, then `score` of test_csv with the pushed model.

    Not blessed (nothing pushed): {"blessed": False, "reasons", "columns"} and no scores.
    With `id_column`: "ids_in_order" says whether the scored output's column equals the
    input's, row by row.
    """
    import pandas as pd

    out = os.path.join(work, "out")
    log = os.path.join(work, "pipeline.log")
    started = time.time()
    summary = _cli(["run", "--data", train_csv, "--label-column", LABEL, "--output", out,
                    *extra], log)
    common = {"blessed": bool(summary.get("blessed")), "columns": summary.get("columns"),
              "reasons": summary.get("reasons", [])}
    model = summary.get("pushed_model")
    if not model:
        return dict(common, seconds=round(time.time() - started, 1))
    scored_csv = os.path.join(work, "scored.csv")
    _cli(["score", "--model", model, "--input", test_csv, "--output", scored_csv], log)
    keep_text = {id_column: str} if id_column else None
    scored = pd.read_csv(scored_csv, dtype=keep_text, keep_default_na=not id_column)
    result = dict(common, score=pd.to_numeric(scored["reconstruction_error"]).to_numpy(),
                  flag=pd.to_numeric(scored["is_anomaly"]).to_numpy().astype(bool),
                  threshold=summary["threshold"], threshold_method=summary["threshold_method"],
                  threshold_rule=summary.get("threshold_rule"),
                  model_selection=summary.get("model_selection"),
                  eval_metrics=summary.get("metrics", {}), epochs_run=summary.get("epochs_run"),
                  seconds=round(time.time() - started, 1), report=summary.get("report"),
                  scored_rows=len(scored))
    if id_column:
        given = pd.read_csv(test_csv, usecols=[id_column], dtype=str,
                            keep_default_na=False)[id_column].tolist()
        result["ids_in_order"] = (id_column in scored.columns
                                  and scored[id_column].tolist() == given)
    return result


def _pipeline_entry(y: np.ndarray, pipe: Dict[str, Any]) -> Dict[str, Any]:
    return dict(scores(y, pipe["score"], pipe["flag"]), threshold=pipe["threshold"],
                threshold_method=pipe["threshold_method"], threshold_rule=pipe["threshold_rule"],
                chosen=_chosen(pipe["model_selection"]), epochs_run=pipe["epochs_run"],
                seconds=pipe["seconds"], eval_split=pipe["eval_metrics"])


def numeric_variant(train, test, work: str, seed: int, extra: List[str]) -> Dict[str, Any]:
    """The pipeline, IsolationForest and the recipe on the clean numeric table."""
    train_csv, test_csv = os.path.join(work, "train70.csv"), os.path.join(work, "test30.csv")
    train.to_csv(train_csv, index=False)
    test.to_csv(test_csv, index=False)
    y = test[LABEL].to_numpy().astype(int)
    features = [c for c in train.columns if c != LABEL]
    x_normal = train.loc[train[LABEL] == 0, features].to_numpy(np.float64)
    x_test = test[features].to_numpy(np.float64)
    pipe = run_pipeline(train_csv, test_csv, work, extra)
    if "score" not in pipe:
        raise RuntimeError("the pipeline pushed no model: " + "; ".join(pipe["reasons"]))
    result: Dict[str, Any] = {"pipeline": _pipeline_entry(y, pipe)}
    t0 = time.time()
    forest = isolation_forest(x_normal, x_test, seed)
    result["iforest"] = dict(scores(y, forest["score"], forest["flag"]),
                             seconds=round(time.time() - t0, 1))
    t0 = time.time()
    recipe = seed_recipe(x_normal, x_test, seed)
    result["recipe"] = dict(scores(y, recipe["score"], recipe["flag"]),
                            threshold=recipe["threshold"], seconds=round(time.time() - t0, 1))
    return result


def mixed_variant(train, test, work: str, seed: int, extra: List[str],
                  parts: Sequence[str] = PARTS) -> Dict[str, Any]:
    """The pipeline on the same split as user-shaped tables (bench/mixed_tables.py), run
    with `--data --label-column label` only (+ RUN_ARGS), scored with `score`."""
    spec = fit_spec(train, seed, parts=parts)
    user_train, user_test = to_user_table(train, seed, spec), to_user_table(test, seed, spec)
    work = os.path.join(work, "mixed")
    os.makedirs(work, exist_ok=True)
    train_csv, test_csv = os.path.join(work, "train70.csv"), os.path.join(work, "test30.csv")
    user_train.to_csv(train_csv, index=False)
    user_test.to_csv(test_csv, index=False)
    pipe = run_pipeline(train_csv, test_csv, work, extra, id_column=ID_COLUMN)
    out: Dict[str, Any] = {
        "blessed": pipe["blessed"], "table": spec.describe(),
        "rows_with_empty_cell": {"train": float(user_train.isna().any(axis=1).mean()),
                                 "test": float(user_test.isna().any(axis=1).mean())},
        "columns": pipe["columns"]}
    if "score" not in pipe:
        out.update(reasons=pipe["reasons"], seconds=pipe["seconds"], ids_in_order=None)
        return out
    y = user_test[LABEL].to_numpy().astype(int)
    out.update(_pipeline_entry(y, pipe), ids_in_order=bool(pipe["ids_in_order"]),
               scored_rows=pipe["scored_rows"])
    return out


def one_split(csv_path: str, seed: int, extra: List[str], keep: bool,
              variants: Sequence[str] = ("numeric",),
              parts: Sequence[str] = PARTS) -> Dict[str, Any]:
    import pandas as pd
    from sklearn.model_selection import train_test_split

    df = pd.read_csv(csv_path)
    train, test = train_test_split(df, test_size=0.3, stratify=df[LABEL], random_state=seed)
    # A failed split keeps its directory (inputs, pipeline.log) for inspection.
    work = tempfile.mkdtemp(prefix=f"bench-quality-{os.path.basename(csv_path)[:-4]}-{seed}-")
    result: Dict[str, Any] = {"seed": seed, "train_rows": len(train), "test_rows": len(test),
                              "test_anomalies": int(test[LABEL].sum())}
    failed = False
    if "numeric" in variants:
        try:
            result.update(numeric_variant(train, test, work, seed, extra))
        except Exception as e:  # noqa: BLE001 - recorded; the mixed variant still runs
            result["error"] = f"{type(e).__name__}: {e}"
            failed = True
    if "mixed" in variants:
        try:
            mixed = mixed_variant(train, test, work, seed, extra, parts)
        except Exception as e:  # noqa: BLE001 - recorded
            mixed = {"error": f"{type(e).__name__}: {e}"}
            failed = True
        if "roc_auc" in mixed and "pipeline" in result:
            mixed["delta_roc_auc"] = mixed["roc_auc"] - result["pipeline"]["roc_auc"]
        result["mixed"] = mixed
    if keep or failed:
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


def _mixed_runs(entry: Dict[str, Any]) -> List[Dict[str, Any]]:
    return [r["mixed"] for r in entry["seeds"] if "roc_auc" in r.get("mixed", {})]


def aggregate(per_dataset: Dict[str, Dict[str, Any]]) -> Dict[str, Any]:
    for entry in per_dataset.values():
        runs = [r for r in entry["seeds"] if "error" not in r and "pipeline" in r]
        entry["mean"] = {m: {k: _mean([r[m][k] for r in runs]) for k in METRICS}
                         for m in METHODS} if runs else None
        entry["std"] = {m: {k: float(np.std([r[m][k] for r in runs])) for k in METRICS}
                        for m in METHODS} if runs else None
        tried = [r["mixed"] for r in entry["seeds"] if "mixed" in r]
        mixed = _mixed_runs(entry)
        if tried:
            deltas = [m["delta_roc_auc"] for m in mixed if m.get("delta_roc_auc") is not None]
            entry["mixed"] = {
                "mean": {k: _mean([m.get(k) for m in mixed])
                         for k in METRICS + ("delta_roc_auc",)}
                if mixed else None,
                "std_roc_auc": float(np.std([m["roc_auc"] for m in mixed])) if mixed else None,
                "worst_delta_roc_auc": min(deltas) if deltas else None,
                "runs": len(tried), "blessed": sum(bool(m.get("blessed")) for m in tried),
                "ids_in_order": sum(bool(m.get("ids_in_order")) for m in tried),
                # None: no numeric ROC-AUC to compare with; False: a seed beyond or failed.
                "within_bound": (None if not deltas else len(deltas) == len(tried)
                                 and all(d >= -MAX_DELTA for d in deltas))}
    done = {n: e for n, e in per_dataset.items() if e["mean"]}
    overall = {m: {k: _mean([e["mean"][m][k] for e in done.values()]) for k in METRICS}
               for m in METHODS} if done else None
    out: Dict[str, Any] = {"datasets_complete": sorted(done), "mean": overall}
    mixed_done = {n: e for n, e in per_dataset.items() if (e.get("mixed") or {}).get("mean")}
    if any("mixed" in e for e in per_dataset.values()):
        out["mixed"] = {
            "datasets_complete": sorted(mixed_done),
            "mean": {k: _mean([e["mixed"]["mean"][k] for e in mixed_done.values()])
                     for k in METRICS + ("delta_roc_auc",)} if mixed_done else None,
            "within_bound": sorted(n for n, e in per_dataset.items()
                                   if (e.get("mixed") or {}).get("within_bound")),
            "beyond_bound": sorted(n for n, e in per_dataset.items()
                                   if "mixed" in e and e["mixed"]["within_bound"] is False),
            "bound": MAX_DELTA}
    return out


def _roles(columns: Optional[Dict[str, Any]]) -> str:
    """The inferred roles, short: 'numeric 5 (+5 indicators), categorical f3_bin, segment;
    passthrough row_id, event_time'."""
    if not columns:
        return "?"
    n, ind = len(columns.get("numeric") or []), len(columns.get("missing_indicators") or [])
    return (f"numeric {n}" + (f" (+{ind} indicators)" if ind else "") + "; categorical "
            + (", ".join(columns.get("categorical") or []) or "none") + "; passthrough "
            + (", ".join(columns.get("passthrough") or []) or "none"))


def _bound_text(within: Optional[bool]) -> str:
    return "n/a" if within is None else "yes" if within else "**no**"


def mixed_markdown(doc: Dict[str, Any]) -> List[str]:
    """The mixed-table variant's section: next to the numeric pipeline, with the delta."""
    summary = doc["summary"].get("mixed")
    if not summary:
        return []
    lines = [
        "", "## Mixed tables: the same splits as user-shaped tables", "",
        "Each split's 70 % and 30 % parts turned into user tables by `bench/mixed_tables.py` "
        f"(parts: {', '.join(doc.get('mixed_parts', PARTS))}; string `row_id` first, ISO "
        "`event_time`, low-cardinality columns as strings `v_<value>`, 1-2 informative "
        "columns replaced by low/mid/high tertile bins, a noise `segment`, empty cells in "
        "~10 % of rows), run with `anomaly-pipeline run --data T --label-column label` (+ the "
        "same extra flags) and scored with `score`. Δ = mixed − numeric pipeline ROC-AUC on "
        f"the same dataset and seed (mean; worst seed); the bound is Δ ≥ −{MAX_DELTA}.", "",
        "| dataset | ROC-AUC numeric | ROC-AUC mixed | Δ ROC-AUC | worst Δ | PR-AUC numeric | "
        "PR-AUC mixed | F1 numeric | F1 mixed | blessed | ids in order | within bound | "
        "mixed s/run | roles inferred (first seed) | converted (first seed) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---|"]

    def f(v, fmt="{:.4f}"):
        return fmt.format(v) if v is not None else ""

    for name, e in doc["datasets"].items():
        mixed = e.get("mixed")
        if not mixed:
            continue
        tried = [r["mixed"] for r in e["seeds"] if "mixed" in r]
        first = tried[0]
        num = dict((e["mean"] or {}).get("pipeline", {}))
        if not num and any("numeric_roc_auc" in m for m in tried):  # NUMERIC_FROM
            num["roc_auc"] = _mean([m.get("numeric_roc_auc") for m in tried])
        mm = mixed["mean"] or {}
        if not mm:
            why = "; ".join(m.get("error") or "not blessed: " + "; ".join(m.get("reasons", []))
                            for m in tried)
            lines.append(f"| {name} | {f(num.get('roc_auc'))} | failed: {why[:200]} |")
            continue
        table = first.get("table") or {}
        converted = ("coded " + (", ".join(table.get("coded") or []) or "none") + "; binned "
                     + (", ".join(table.get("binned") or {}) or "none"))
        secs = _mean([m.get("seconds") for m in tried])
        lines.append(
            f"| {name} | {f(num.get('roc_auc'))} | {f(mm['roc_auc'])} ±{mixed['std_roc_auc']:.3f}"
            f" | {f(mm['delta_roc_auc'], '{:+.4f}')} | {f(mixed['worst_delta_roc_auc'], '{:+.4f}')}"
            f" | {f(num.get('pr_auc'))} | {f(mm['pr_auc'])} | {f(num.get('f1'))} | {f(mm['f1'])}"
            f" | {mixed['blessed']}/{mixed['runs']} | {mixed['ids_in_order']}/{mixed['runs']}"
            f" | {_bound_text(mixed['within_bound'])} | {f(secs, '{:.0f}')}"
            f" | {_roles(first.get('columns'))} | {converted} |")
    if summary["mean"]:
        m = summary["mean"]
        num = doc["summary"].get("mean") or {}
        p = num.get("pipeline", {})
        lines.append(f"| **mean ({len(summary['datasets_complete'])} datasets)** | "
                     f"**{f(p.get('roc_auc'))}** | **{f(m['roc_auc'])}** | "
                     f"**{f(m['delta_roc_auc'], '{:+.4f}')}** | | **{f(p.get('pr_auc'))}** | "
                     f"**{f(m['pr_auc'])}** | **{f(p.get('f1'))}** | **{f(m['f1'])}** | | | | | | |")
    lines += ["", f"- within Δ ≥ −{MAX_DELTA} on every seed: "
              f"{', '.join(summary['within_bound']) or 'none'}; beyond: "
              f"{', '.join(summary['beyond_bound']) or 'none'}"]
    for name, e in doc["datasets"].items():
        for r in e["seeds"]:
            m = r.get("mixed") or {}
            if m.get("error"):
                lines.append(f"- {name} seed {r['seed']} mixed failed: {m['error']}")
            elif "roc_auc" not in m and m:
                lines.append(f"- {name} seed {r['seed']} mixed not blessed: "
                             + "; ".join(m.get("reasons", [])))
    return lines


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
        f"Variants: {', '.join(doc.get('variants', ['numeric']))}.",
        "",
    ]
    numeric = "numeric" in doc.get("variants", ["numeric"])
    if numeric:
        lines += ["## Numeric tables (the datasets as published)", "",
                  f"| dataset | rows | d | anomalies | {head} | pipeline s/run | "
                  "model kept (per seed) |",
                  "|---|---:|---:|---:|" + "---:|" * len(cols) + "---:|---|"]
    for name, e in doc["datasets"].items():
        if not numeric:
            break
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
    lines += mixed_markdown(doc)
    return "\n".join(lines) + "\n"


def _numeric_reference(path: str) -> Dict[str, Dict[int, float]]:
    """{dataset: {seed: numeric pipeline ROC-AUC}} from an earlier quality.json."""
    with open(path) as f:
        doc = json.load(f)
    return {n: {r["seed"]: r["pipeline"]["roc_auc"] for r in e["seeds"] if "pipeline" in r}
            for n, e in doc["datasets"].items()}


def _delta_from(r: Dict[str, Any], numeric_auc: Optional[float], source: Optional[str]) -> None:
    """A mixed run without a numeric run in the same split: its delta vs `numeric_auc`."""
    mixed = r.get("mixed") or {}
    if "pipeline" in r or "roc_auc" not in mixed or numeric_auc is None:
        return
    mixed["delta_roc_auc"] = mixed["roc_auc"] - numeric_auc
    mixed["numeric_roc_auc"] = numeric_auc
    mixed["numeric_from"] = source


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
    variants = [v.strip() for v in (os.environ.get("VARIANTS") or ",".join(VARIANTS)).split(",")
                if v.strip()]
    parts = [p.strip() for p in (os.environ.get("MIXED_PARTS") or ",".join(PARTS)).split(",")
             if p.strip() and p.strip() != "none"]
    for bad, allowed, what in ((set(variants) - set(VARIANTS), VARIANTS, "VARIANTS"),
                               (set(parts) - set(PARTS), PARTS, "MIXED_PARTS")):
        if bad:
            print(f"error: {what}: unknown {', '.join(sorted(bad))} (one of "
                  f"{', '.join(allowed)})", file=sys.stderr)
            return 2
    if not os.path.exists(CLI):
        probe = subprocess.run([*cli_command(), "--help"], capture_output=True, cwd=ROOT,
                               env=dict(os.environ, PYTHONPATH=ROOT))
        if probe.returncode != 0:
            print(f"error: {CLI} not found and `python -m pipeline.cli` does not run; "
                  "run `make venv` first", file=sys.stderr)
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
        "run_args": extra, "variants": variants, "mixed_parts": parts,
        "max_delta_roc_auc": MAX_DELTA, "protocol": __doc__.split("\n\n")[1],
        "mixed_protocol": __doc__.split("\n\n")[2], "datasets": {}}
    numeric_from = os.environ.get("NUMERIC_FROM") or None
    reference = _numeric_reference(numeric_from) if numeric_from else {}
    doc["numeric_from"] = numeric_from
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
                r = one_split(path, seed, extra, keep, variants, parts)
                _delta_from(r, reference.get(name, {}).get(seed), numeric_from)
            except Exception as e:  # noqa: BLE001 - record and go on with the next split
                r = {"seed": seed, "error": f"{type(e).__name__}: {e}"}
            entry["seeds"].append(r)
            line = {m: {k: round(r[m][k], 4) for k in METRICS} for m in METHODS if m in r}
            mixed = r.get("mixed") or {}
            if "roc_auc" in mixed:
                line["mixed"] = {k: round(mixed[k], 4) for k in METRICS + ("delta_roc_auc",)
                                 if mixed.get(k) is not None}
                line["mixed"].update(blessed=mixed["blessed"], ids_in_order=mixed["ids_in_order"])
            elif mixed:
                line["mixed"] = mixed.get("error") or {"blessed": mixed.get("blessed")}
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
