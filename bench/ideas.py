"""In-process prototype of the quality ideas (not the benchmark; see quality.py).

Emulates the pipeline's protocol without TFX so ideas can be screened in
minutes: stratified 70/30 split per seed; inside the 70 %, an 80/20
train/eval split (ExampleGen's hash split); z-score statistics of the train
split; the autoencoder from `components.model.build_autoencoder` trained on the
train split's normal rows with a 20 % validation slice; the threshold fitted on
the eval split; ROC-AUC / PR-AUC / F1 on the 30 % test part.

Stage 1 (`train`) caches per-feature squared errors of every trained variant
(validation, eval and test rows) under CACHE; stage 2 (`analyze`) combines
them with the post-hoc ideas (per-feature error normalisation, threshold
methods, ensembles) and writes bench/results/ideas.md.

    .venv/bin/python bench/ideas.py train [--datasets a,b] [--seeds 0,1,2] [--variants v1,v2]
    .venv/bin/python bench/ideas.py analyze [--threshold best_f1] [--out bench/results/ideas.md]
    .venv/bin/python bench/ideas.py select --candidates base,sigmoid,noise3 [--out ...]
"""
import argparse
import glob
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
DATA_DIR = os.environ.get("DATA_DIR", os.path.join(ROOT, "..", "shared", "data"))
CACHE = os.environ.get("IDEAS_CACHE", "/tmp/i4/ideas_cache")

# Trained variants: ModelSettings overrides + data handling.
VARIANTS = {
    "base": {},                                     # the current default
    "sigmoid": {"output_activation": "sigmoid", "early_stopping_patience": 0},
    "enc05": {"encoding_ratio": 0.5},
    "enc03": {"encoding_ratio": 0.3},
    "wide": {"hidden_units": (64,), "encoding_ratio": 0.5},
    "lr3e4": {"learning_rate": 3e-4},
    "pat10": {"early_stopping_patience": 10},
    "clip5": {"_clip": 5.0},                         # z clipped to +-5 (input and target)
    "clip10": {"_clip": 10.0},
    "normscale": {"_scale_on": "normal"},            # z-score statistics of normal rows only
    "robust": {"_scale_on": "robust"},               # median / IQR scaling
    "noise": {"_noise": 0.1},                        # denoising: Gaussian input noise
    "noise2": {"_noise": 0.2},
    "noise3": {"_noise": 0.3},
    "noise3ep150": {"_noise": 0.3, "epochs": 150, "early_stopping_patience": 10},
    "noise5": {"_noise": 0.5},
    "noise10": {"_noise": 1.0},
    "ep150": {"epochs": 150, "early_stopping_patience": 10},
    "signoise3": {"output_activation": "sigmoid", "early_stopping_patience": 0, "_noise": 0.3},
    "sigenc05": {"output_activation": "sigmoid", "early_stopping_patience": 0,
                 "encoding_ratio": 0.5},
    "enc09": {"encoding_ratio": 0.9},
    "deep25": {"hidden_units": (64,), "encoding_ratio": 0.25},
    "deep25sig": {"hidden_units": (64,), "encoding_ratio": 0.25, "output_activation": "sigmoid",
                  "early_stopping_patience": 0},
    "deep15": {"hidden_units": (32,), "encoding_ratio": 0.15},
    "deep25n": {"hidden_units": (64,), "encoding_ratio": 0.25, "_noise": 0.3},
    "enc15": {"encoding_ratio": 0.15},
    "tanh": {"activation": "tanh"},
    "tanh05": {"activation": "tanh", "encoding_ratio": 0.5},
    "tanhwide": {"activation": "tanh", "hidden_units": (64,), "encoding_ratio": 0.5},
    "s1": {"seed": 1}, "s2": {"seed": 2}, "s3": {"seed": 3}, "s4": {"seed": 4},
    "e05s1": {"encoding_ratio": 0.5, "seed": 1}, "e05s2": {"encoding_ratio": 0.5, "seed": 2},
    "e05s3": {"encoding_ratio": 0.5, "seed": 3}, "e05s4": {"encoding_ratio": 0.5, "seed": 4},
}


def load(name):
    import pandas as pd

    df = pd.read_csv(os.path.join(DATA_DIR, name + ".csv"))
    y = df.pop("label").to_numpy().astype(int)
    return df.to_numpy(dtype=np.float64), y


def splits(x, y, seed):
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    tr, te = train_test_split(idx, test_size=0.3, stratify=y, random_state=seed)
    rng = np.random.default_rng(1000 + seed)
    is_eval = rng.random(len(tr)) < 0.2
    return tr[~is_eval], tr[is_eval], te


def train_variant(name, seed, variant):
    import keras

    from components.model.autoencoder import build_autoencoder
    from components.model.settings import ModelSettings

    x, y = load(name)
    tr, ev, te = splits(x, y, seed)
    spec = dict(VARIANTS[variant])
    clip = spec.pop("_clip", None)
    scale_on = spec.pop("_scale_on", "all")
    noise = spec.pop("_noise", None)
    ref = x[tr] if scale_on == "all" else x[tr][y[tr] == 0]
    if scale_on == "robust":
        center = np.median(ref, 0)
        spread = np.percentile(ref, 75, 0) - np.percentile(ref, 25, 0)
        spread = np.where(spread > 0, spread, ref.std(0))
    else:
        center, spread = ref.mean(0), ref.std(0)
    spread = np.where(spread > 0, spread, 1.0)

    def z(rows):
        out = (rows - center) / spread
        return np.clip(out, -clip, clip) if clip else out

    normal = z(x[tr][y[tr] == 0]).astype("float32")
    # The Trainer's deterministic validation slice: 20 of every 100 rows.
    is_val = (np.arange(len(normal)) % 100) < 20
    xt, xv = normal[~is_val], normal[is_val]
    cfg = ModelSettings(**spec)
    keras.utils.set_random_seed(cfg.seed + 100 * seed)
    model = build_autoencoder(x.shape[1], cfg)
    cb = [keras.callbacks.EarlyStopping(monitor="val_loss", patience=cfg.early_stopping_patience,
                                        restore_best_weights=True)] \
        if cfg.early_stopping_patience else []
    t0 = time.time()
    fit_model = model
    if noise:
        inp = keras.Input(shape=(x.shape[1],))
        fit_model = keras.Model(inp, model(keras.layers.GaussianNoise(noise)(inp)))
        fit_model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss="mse")
    h = fit_model.fit(xt, xt, validation_data=(xv, xv), epochs=cfg.epochs,
                  batch_size=cfg.batch_size, callbacks=cb, verbose=0, shuffle=True)

    def fe(rows):
        zz = z(rows).astype("float32")
        return ((zz - model.predict(zz, batch_size=4096, verbose=0)) ** 2).astype("float32")

    os.makedirs(CACHE, exist_ok=True)
    np.savez_compressed(
        os.path.join(CACHE, f"{name}__{seed}__{variant}.npz"),
        fe_val=fe(x[tr][y[tr] == 0][is_val]), fe_train=fe(x[tr][y[tr] == 0][~is_val]),
        fe_eval=fe(x[ev]), y_eval=y[ev], fe_test=fe(x[te]), y_test=y[te],
        epochs=len(h.history["loss"]), seconds=time.time() - t0)


def baselines(name, seed):
    """IsolationForest (default params) and the reference recipe, cached."""
    os.makedirs(CACHE, exist_ok=True)
    path = os.path.join(CACHE, f"{name}__{seed}__baselines.json")
    if os.path.exists(path):
        return json.load(open(path))
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from quality import isolation_forest, seed_recipe

    x, y = load(name)
    tr, ev, te = splits(x, y, seed)
    train_idx = np.concatenate([tr, ev])
    xn = x[train_idx][y[train_idx] == 0]
    out = {"iforest": isolation_forest(xn, x[te], seed), "recipe": seed_recipe(xn, x[te], seed)}
    out = {k: {"score": v["score"].tolist(), "flag": v["flag"].astype(int).tolist()}
           for k, v in out.items()}
    out["y_test"] = y[te].tolist()
    json.dump(out, open(path, "w"))
    return out


def cmd_train(a):
    for name in a.datasets:
        for seed in a.seeds:
            baselines(name, seed)
            for v in a.variants:
                path = os.path.join(CACHE, f"{name}__{seed}__{v}.npz")
                if os.path.exists(path):
                    continue
                t0 = time.time()
                train_variant(name, seed, v)
                print(f"{name} seed={seed} {v}: {time.time() - t0:.1f}s", flush=True)


# ----------------------------------------------------------------------------- analysis
def metrics(score, y, flag):
    from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

    return {"roc_auc": roc_auc_score(y, score), "pr_auc": average_precision_score(y, score),
            "f1": f1_score(y, flag.astype(int), zero_division=0)}


def threshold(method, err_eval, y_eval, params=None):
    from components.evaluator import thresholds

    if method == "best_f1":
        return thresholds.compute_threshold("best_f1", err_eval, {}, labels=y_eval).value
    return thresholds.compute_threshold(method, err_eval[y_eval == 0], params or {}).value


def variant_errors(d, norm):
    """Row errors from per-feature squared errors, optionally normalised per feature."""
    scale = d["fe_val"].mean(0) if norm else np.ones(d["fe_val"].shape[1])
    scale = np.where(scale > 1e-12, scale, 1e-12)
    return {k: (d[f"fe_{k}"] / scale).mean(1) for k in ("eval", "test", "train", "val")}


def combos():
    """(label, members, normalise, threshold method, params) evaluated by `analyze`."""
    out = []
    thr = [("mean_std", None), ("mean_std_k4", {"k": 4.0}), ("mad", None), ("quantile", None),
           ("evt", None), ("best_f1", None)]
    for members in (["base"], ["sigmoid"], ["enc05"], ["enc03"], ["wide"], ["lr3e4"], ["pat10"],
                    ["clip5"], ["clip10"], ["normscale"], ["robust"], ["noise"], ["ep150"],
                    ["enc09"], ["tanh"], ["tanh05"], ["tanhwide"], ["noise2"], ["noise3"], ["noise5"], ["noise3ep150"],
                    ["noise10"],
                    ["base", "s1", "s2", "s3", "s4"],
                    ["enc05", "e05s1", "e05s2", "e05s3", "e05s4"]):
        for norm in (False, True):
            for t, p in thr:
                out.append(("+".join(members) if len(members) == 1 else f"ens5({members[0]})",
                            members, norm, t, p))
    return out


def cmd_analyze(a):
    rows = {}
    base_rows = {}
    for name in a.datasets:
        for seed in a.seeds:
            bpath = os.path.join(CACHE, f"{name}__{seed}__baselines.json")
            if not os.path.exists(bpath):
                continue
            b = json.load(open(bpath))
            yt = np.array(b["y_test"])
            for k in ("iforest", "recipe"):
                base_rows.setdefault(k, {}).setdefault(name, []).append(
                    metrics(np.array(b[k]["score"]), yt, np.array(b[k]["flag"])))
            for label, members, norm, t, p in combos():
                paths = [os.path.join(CACHE, f"{name}__{seed}__{m}.npz") for m in members]
                if not all(os.path.exists(pp) for pp in paths):
                    continue
                errs = [variant_errors(np.load(pp), norm) for pp in paths]
                d0 = np.load(paths[0])
                # Ensemble: mean of members' errors, each divided by its mean
                # validation error so members weigh equally.
                if len(errs) > 1:
                    e = {k: np.mean([m[k] / m["val"].mean() for m in errs], 0)
                         for k in ("eval", "test")}
                else:
                    e = errs[0]
                method = "mean_std" if t == "mean_std_k4" else t
                thr_v = threshold(method, e["eval"], d0["y_eval"], p)
                key = (label, norm, t)
                rows.setdefault(key, {}).setdefault(name, []).append(
                    metrics(e["test"], d0["y_test"], e["test"] > thr_v))
    names = list(a.datasets)

    def avg(per_ds):
        ds = [n for n in names if n in per_ds]
        m = {k: float(np.mean([np.mean([r[k] for r in per_ds[n]]) for n in ds]))
             for k in ("roc_auc", "pr_auc", "f1")}
        m["n"] = len(ds)
        m["per_ds"] = {n: float(np.mean([r["roc_auc"] for r in per_ds[n]])) for n in ds}
        m["per_ds_f1"] = {n: float(np.mean([r["f1"] for r in per_ds[n]])) for n in ds}
        return m

    lines = ["| idea | norm | threshold | datasets | ROC-AUC | PR-AUC | F1 | "
             + " | ".join(n[:6] for n in names) + " |",
             "|---|---|---|---:|---:|---:|---:|" + "---:|" * len(names)]
    for k in ("iforest", "recipe"):
        m = avg(base_rows[k])
        lines.append(f"| {k} | | own | {m['n']} | {m['roc_auc']:.4f} | {m['pr_auc']:.4f} | "
                     f"{m['f1']:.4f} | " + " | ".join(
                         f"{m['per_ds'].get(n, float('nan')):.3f}" for n in names) + " |")
    for (label, norm, t), per in sorted(rows.items(), key=lambda kv: kv[0]):
        m = avg(per)
        if a.threshold and t != a.threshold:
            continue
        lines.append(f"| {label} | {'yes' if norm else 'no'} | {t} | {m['n']} | "
                     f"{m['roc_auc']:.4f} | {m['pr_auc']:.4f} | {m['f1']:.4f} | " + " | ".join(
                         f"{m['per_ds'].get(n, float('nan')):.3f}" for n in names) + " |")
    text = "\n".join(lines)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


def cmd_select(a):
    """Model selection as the Trainer does it: per dataset and seed, the candidate
    (a variant, or members joined by '+' averaged as an ensemble) with the highest
    ROC-AUC on the labelled eval split is kept; its test ROC-AUC is reported."""
    from sklearn.metrics import roc_auc_score

    cands = a.candidates.split(",")
    per: dict = {}
    for name in a.datasets:
        for seed in a.seeds:
            bpath = os.path.join(CACHE, f"{name}__{seed}__baselines.json")
            paths = {c: [os.path.join(CACHE, f"{name}__{seed}__{v}.npz") for v in c.split("+")]
                     for c in cands}
            if not os.path.exists(bpath) or not all(os.path.exists(p) for ps in paths.values()
                                                    for p in ps):
                continue
            b = json.load(open(bpath))
            row = {"iforest": roc_auc_score(b["y_test"], b["iforest"]["score"]),
                   "recipe": roc_auc_score(b["y_test"], b["recipe"]["score"])}
            best, best_eval = None, -1.0
            for c, ps in paths.items():
                ds = [np.load(p) for p in ps]
                ev = sum(d["fe_eval"] for d in ds).mean(1)
                te = sum(d["fe_test"] for d in ds).mean(1)
                v = roc_auc_score(ds[0]["y_eval"], ev)
                row[c] = roc_auc_score(ds[0]["y_test"], te)
                if v > best_eval:
                    best, best_eval = c, v
            row["selected"] = row[best]
            row["chosen"] = best
            per.setdefault(name, []).append(row)
    cols = ["iforest", "recipe", *cands, "selected"]
    lines = [f"Model selection over {', '.join(cands)} (bench/ideas.py select): test ROC-AUC, "
             "mean over seeds; `selected` keeps, per dataset and seed, the candidate with the "
             "highest eval-split ROC-AUC.", "",
             "| dataset | seeds | " + " | ".join(cols) + " | chosen |",
             "|---|---:|" + "---:|" * len(cols) + "---|"]
    for name, rows in per.items():
        lines.append(f"| {name} | {len(rows)} | " + " | ".join(
            f"{np.mean([r[c] for r in rows]):.4f}" for c in cols) + " | "
            + ", ".join(r["chosen"] for r in rows) + " |")
    if per:
        lines.append(f"| **mean ({len(per)})** | | " + " | ".join(
            f"**{np.mean([np.mean([r[c] for r in rows]) for rows in per.values()]):.4f}**"
            for c in cols) + " | |")
    text = "\n".join(lines)
    print(text)
    if a.out:
        with open(a.out, "a") as f:
            f.write("\n" + text + "\n")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("cmd", choices=["train", "analyze", "select"])
    all_ds = sorted(os.path.basename(f)[:-4] for f in glob.glob(os.path.join(DATA_DIR, "*.csv")))
    p.add_argument("--datasets", default=",".join(all_ds))
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--variants", default="base")
    p.add_argument("--threshold", default=None)
    p.add_argument("--out", default=None)
    p.add_argument("--candidates", default="base,sigmoid,noise3")
    a = p.parse_args()
    a.datasets = a.datasets.split(",")
    a.seeds = [int(s) for s in a.seeds.split(",")]
    a.variants = a.variants.split(",")
    {"train": cmd_train, "analyze": cmd_analyze, "select": cmd_select}[a.cmd](a)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    main()
