"""The real DAG on a small generated CSV, then the pushed SavedModel and `score`.

600 normal rows lie near a 3-dimensional subspace of 8 features; 20 injected
outliers break those correlations. The pipeline must push a model whose
signature matches the documented one (docs/serving.md), whose scores equal a
numpy recomputation from the transform statistics and the model weights, and
which flags most outliers and few normal rows.
"""
import glob
import json
import os

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from tests.helpers import FEATURES, make_data
from tests.helpers import cli_subprocess as cli

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    data = root / "train.csv"
    make_data().to_csv(data, index=False)
    out = root / "out"
    # The recipe's threshold rule, explicitly: its value is recomputed below
    # (the default, auto, picks best_f1 only with >= 5 anomalies in the eval split).
    proc = cli("run", "--data", str(data), "--label-column", "label", "--output", str(out),
               "--epochs", "40", "--batch-size", "32", "--threshold-method", "mean_std")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"root": root, "data": data, "out": out, "summary": summary, "proc": proc}


def test_summary_is_the_contract_json(run):
    s = run["summary"]
    for key in ("blessed", "pushed_model", "threshold", "threshold_method", "train_rows",
                "metrics", "seconds", "components", "quarantined_rows"):
        assert key in s, key
    assert s["blessed"] is True
    assert s["threshold_method"] == "mean_std" and s["threshold_rule"] == "mean_std"
    assert set(s["metrics"]) >= {"precision", "recall", "f1", "roc_auc", "pr_auc"}
    assert s["metrics"]["roc_auc"] > 0.9
    # The simple challengers on the same eval rows, beside the autoencoder.
    ch = s["challengers"]
    assert {"max_abs_z", "mahalanobis", "knn", "iforest"} <= set(ch)
    assert all(0.5 < ch[n] <= 1 for n in ("max_abs_z", "mahalanobis", "knn", "iforest")), ch
    assert ch["best"] in ch and ch["autoencoder_roc_auc"] == s["metrics"]["roc_auc"]
    assert ch["margin_vs_best"] == round(s["metrics"]["roc_auc"] - ch[ch["best"]], 6)
    # Trained on normal rows of the train split only: fewer than all 600 normal rows.
    assert 300 < s["train_rows"] < 600
    assert sorted(s["components"]["ran"]) == sorted([
        "CsvExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator", "Transform",
        "Trainer", "latest_blessed_model_resolver", "AnomalyEvaluator", "Pusher",
        # accepted_statistics_resolver is absent: on a first run it finds no
        # accepted statistics and TFX records its execution as FAILED.
        "DataGate"])
    pushed = s["pushed_model"]
    assert pushed.startswith(str(run["out"] / "serving_model" / "anomaly_detector"))
    assert os.path.basename(pushed).isdigit()


def test_stdout_ends_with_the_summary_only(run):
    last = run["proc"].stdout.strip().splitlines()[-1]
    assert json.loads(last) == run["summary"]


def _serialize(df):
    out = []
    for row in df[FEATURES].itertuples(index=False):
        ex = tf.train.Example(features=tf.train.Features(feature={
            k: tf.train.Feature(float_list=tf.train.FloatList(value=[float(v)]))
            for k, v in zip(FEATURES, row)}))
        out.append(ex.SerializeToString())
    return tf.constant(out)


def _train_split(out_dir):
    """The train split as ExampleGen wrote it (Parquet, one-value list columns)."""
    import pyarrow.parquet as pq

    files = glob.glob(str(out_dir / "pipeline_root" / "CsvExampleGen" / "examples" / "*"
                          / "Split-train" / "*.parquet"))
    assert files, "no Parquet train split"
    table = pq.read_table(files)
    return pd.DataFrame({k: table.column(k).combine_chunks().flatten().to_numpy()
                         .astype(np.float64) for k in FEATURES + ["label"]})


def test_signature_and_numpy_recomputation(run):
    model_dir = run["summary"]["pushed_model"]
    loaded = tf.saved_model.load(model_dir)
    fn = loaded.signatures["serving_default"]
    inputs = fn.structured_input_signature[1]
    assert list(inputs) == ["examples"] and inputs["examples"].dtype == tf.string
    outs = fn.structured_outputs
    assert outs["reconstruction_error"].dtype == tf.float32
    assert outs["is_anomaly"].dtype == tf.bool
    assert outs["threshold"].dtype == tf.float32

    df = pd.read_csv(run["data"])
    got = fn(examples=_serialize(df))
    err = got["reconstruction_error"].numpy()
    assert err.shape == (len(df),)
    thr = run["summary"]["threshold"]
    np.testing.assert_allclose(got["threshold"].numpy(), np.full(len(df), thr), rtol=1e-6)
    np.testing.assert_array_equal(got["is_anomaly"].numpy(), err > np.float32(thr))

    # Independent recomputation: z-score with the train split's statistics
    # (population std, as TFT and StandardScaler), then the Dense weights.
    train = _train_split(run["out"])
    mean, std = train[FEATURES].mean().to_numpy(), train[FEATURES].std(ddof=0).to_numpy()
    meta = json.load(open(os.path.join(model_dir, "assets", "model_metadata.json")))
    assert meta["features"] == FEATURES
    z = (df[FEATURES].to_numpy() - mean) / std
    ckpt = tf.train.load_checkpoint(os.path.join(model_dir, "variables", "variables"))
    names = ckpt.get_variable_to_shape_map()
    members = sorted({n.split("/")[1] for n in names if n.startswith("models/")}, key=int)
    assert members, "no autoencoder weights in the checkpoint"
    sq = np.zeros_like(z)
    for m in members:  # an ensemble averages its members' squared errors
        prefix = f"models/{m}/_operations/"
        layers = sorted({n[len(prefix):].split("/")[0] for n in names if n.startswith(prefix)},
                        key=int)
        h = z
        for i, idx in enumerate(layers):
            w = ckpt.get_tensor(f"{prefix}{idx}/_kernel/.ATTRIBUTES/VARIABLE_VALUE")
            b = ckpt.get_tensor(f"{prefix}{idx}/bias/.ATTRIBUTES/VARIABLE_VALUE")
            h = h @ w + b
            if i < len(layers) - 1:
                h = np.maximum(h, 0)  # relu hidden layers
            elif meta["model"]["output_activation"] == "sigmoid":  # model selection chose it
                h = 1 / (1 + np.exp(-h))
        sq += (z - h) ** 2 / len(members)
    scale = ckpt.get_tensor("feature_error_scale/.ATTRIBUTES/VARIABLE_VALUE")
    if meta.get("feature_error_scale") is not None:
        np.testing.assert_allclose(scale, meta["feature_error_scale"], rtol=1e-6)
    expected = (sq / scale).mean(axis=1)
    np.testing.assert_allclose(err, expected, rtol=2e-3, atol=1e-5)


def test_threshold_json_beside_the_model(run):
    model_dir = run["summary"]["pushed_model"]
    info = json.load(open(os.path.join(model_dir, "assets", "threshold.json")))
    assert info["method"] == "mean_std" and info["params"] == {"k": 3.0}
    assert info["threshold"] == pytest.approx(run["summary"]["threshold"])
    stats = info["error_stats"]["normal"]
    assert info["threshold"] == pytest.approx(stats["mean"] + 3 * stats["std"], rel=1e-6)


def test_report_html_is_written_with_every_part(run):
    """report.html: in the evaluation artifact and copied to <output>, self-contained."""
    import base64
    import re

    s = run["summary"]
    assert s["report"] == str(run["out"] / "report.html")
    text = open(s["report"]).read()
    evaluation_dir = os.path.dirname(s["evaluation"])
    # The published copy: the evaluator's report plus the run's own first section.
    from pipeline import run_report

    assert text.index("<section id='this-run'>") < text.index("<section id='summary'>")
    assert run_report.remove(text) == open(os.path.join(evaluation_dir, "report.html")).read()
    assert json.load(open(s["evaluation"]))["report"] == os.path.join(evaluation_dir,
                                                                       "report.html")
    assert not re.search(r'(src|href)="(http|//|file:)', text)  # nothing external
    sections = dict(re.findall(r"<section id='(\w+)'>(.*?)</section>", text, re.S))
    assert set(sections) == {"summary", "training", "selection", "challengers", "errors",
                             "curves", "confusion", "features", "baseline", "data"}
    assert "the best challenger" in sections["challengers"]
    assert all(f"<td>{n}</td>" in sections["challengers"] for n in ("knn", "iforest"))

    def pngs(html):
        imgs = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
        assert all(base64.b64decode(i)[:4] == b"\x89PNG" for i in imgs)
        return imgs

    assert pngs(sections["training"]) and "validation loss" in sections["training"]
    assert pngs(sections["errors"]) and "anomaly" in sections["errors"]
    assert pngs(sections["curves"])
    m = s["metrics"]
    assert f"{s['metrics']['roc_auc']:.4f}" in sections["summary"]
    evaluation = json.load(open(s["evaluation"]))["metrics"]
    assert f"<td>{evaluation['tp']:,}</td>" in sections["confusion"] and m["n_anomalies"] > 0
    assert pngs(sections["features"]) and all(f"<td>{f}</td>" in sections["features"]
                                              for f in FEATURES)
    assert "No baseline" in sections["baseline"]  # the first run in this output
    assert "train split" in sections["data"] and "<td>x0</td>" in sections["data"]
    errors = np.load(os.path.join(evaluation_dir, "errors.npz"))
    assert errors["normal"].size + errors["anomaly"].size == m["eval_rows"]


def test_score_flags_most_outliers_and_few_normal_rows(run, tmp_path):
    fresh = make_data(n_normal=400, n_outliers=40, seed=99)  # rows the model never saw
    src, dst = tmp_path / "new.csv", tmp_path / "scored.csv"
    fresh.to_csv(src, index=False)
    proc = cli("score", "--model", run["summary"]["pushed_model"], "--input", str(src),
               "--output", str(dst))
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    scored = pd.read_csv(dst)
    assert stats["rows"] == len(fresh) == len(scored)
    assert list(scored.columns) == list(fresh.columns) + ["reconstruction_error", "is_anomaly",
                                                          "top_features"]
    # The injected outliers are off in every feature; each row names 3 of them.
    assert scored["top_features"].str.count(";").eq(2).all()
    np.testing.assert_array_equal(scored["label"], fresh["label"])
    flagged = scored.groupby("label")["is_anomaly"].mean()
    assert flagged[1] >= 0.8, flagged
    assert flagged[0] <= 0.1, flagged
    # The same model directory given as serving_model/<name> picks its newest version.
    proc = cli("score", "--model", str(run["out"] / "serving_model" / "anomaly_detector"),
               "--input", str(src), "--output", str(tmp_path / "again.csv"))
    again = pd.read_csv(tmp_path / "again.csv")
    np.testing.assert_allclose(again["reconstruction_error"], scored["reconstruction_error"])


def test_rerun_with_unchanged_inputs_is_cached(run):
    proc = cli("run", "--data", str(run["data"]), "--label-column", "label", "--output",
               str(run["out"]), "--epochs", "40", "--batch-size", "32")
    s = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"CsvExampleGen", "StatisticsGen", "Transform", "Trainer"} <= set(s["components"]["cached"])


def test_new_data_with_other_columns_than_the_served_model_is_refused(run, tmp_path):
    df = pd.read_csv(run["data"]).drop(columns=["x3"])
    df["extra"] = 1.0
    bad = tmp_path / "changed.csv"
    df.to_csv(bad, index=False)
    proc = cli("run", "--data", str(bad), "--label-column", "label", "--output", str(run["out"]),
               check=False)
    assert proc.returncode == 2
    errors = [l for l in proc.stderr.splitlines() if l.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in proc.stderr
    assert str(bad) in errors[0] and "x3" in errors[0]
