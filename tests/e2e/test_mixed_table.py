"""A real table end to end: string ids, timestamps, string categories, empty cells.

The generated card-transactions table (data/make_transactions.py) is written
the way spreadsheets export it -- `;`-separated, CRLF line ends, a UTF-8
byte-order mark -- and `run` gets only `--data` and `--label-column`. Then:
the summary states each column's role and why; the anomalies (each value
common, the combination not: a 900-euro grocery bill) are found; `score` on
new rows with unseen categories and empty cells keeps the ids, in input
order; `serving_default` takes bytes features and missing ones; the MLflow
pyfunc and `mlflow models serve` take string columns; `drift` compares the
categories and not the ids.
"""
import csv
import importlib.util
import io
import json
import os

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from sklearn.metrics import roc_auc_score

from components.model.scorer import SavedModelScorer
from tests.helpers import cli_subprocess
from tests.helpers import registry as registry_helpers
from tests.helpers import run_json

pytestmark = pytest.mark.e2e

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HEADER = ["transaction_id", "timestamp", "customer_id", "merchant_category", "country",
          "amount", "hour", "n_items", "is_fraud"]
NAME = "transactions_ae"


def _generator():
    spec = importlib.util.spec_from_file_location(
        "make_transactions", os.path.join(ROOT, "data", "make_transactions.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _table(rows, seed) -> pd.DataFrame:
    df = pd.DataFrame(_generator().generate(rows, seed), columns=HEADER)
    return df.astype({"amount": str}).replace({"amount": {"": np.nan}})


def _write(df, path, sep=",", crlf=False, bom=False):
    text = io.StringIO()
    df.to_csv(text, index=False, sep=sep, lineterminator="\r\n" if crlf else "\n")
    path.write_bytes(("\ufeff" if bom else "").encode() + text.getvalue().encode())
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("mixed")
    train = _table(2500, seed=3)
    data = _write(train, root / "transactions.csv", sep=";", crlf=True, bom=True)
    out = root / "out"
    summary = run_json("run", "--data", str(data), "--label-column", "is_fraud",
                       "--output", str(out), "--model-name", NAME, "--epochs", "20",
                       cwd=str(root))
    return {"root": root, "out": out, "summary": summary, "train": train,
            "uri": "sqlite:///" + str(out / "mlflow.db")}


def test_the_summary_states_each_role_and_why(run):
    s = run["summary"]
    cols = s["columns"]
    assert cols["numeric"] == ["amount", "hour", "n_items"]
    assert cols["categorical"] == ["merchant_category", "country"]
    assert cols["passthrough"] == ["transaction_id", "timestamp", "customer_id"]
    assert cols["missing_indicators"] == ["amount"]
    why = cols["why"]
    assert why["transaction_id"].startswith("passthrough: identifier")
    assert why["timestamp"].startswith("passthrough: date/time values")
    assert "max_categories" in why["customer_id"]
    assert why["merchant_category"].startswith("categorical: 8 distinct values")
    assert "empty cells: imputed" in why["amount"]
    assert s["input"]["delimiter"] == ";"
    assert any("byte-order mark" in n for n in s["input"]["notes"])
    assert s["input"]["empty_cells"]["amount"] > 150
    assert s["quarantined_rows"] == 0


def test_the_anomalies_are_found(run):
    s = run["summary"]
    assert s["blessed"] is True and s["pushed_model"]
    assert s["metrics"]["roc_auc"] >= 0.9, s["metrics"]


def _new_rows():
    """New transactions: unseen categories, empty cells in every column kind, shuffled."""
    df = _table(1200, seed=11)
    rng = np.random.default_rng(0)
    df.loc[rng.choice(len(df), 15, replace=False), "merchant_category"] = "crypto_exchange"
    df.loc[rng.choice(len(df), 15, replace=False), "country"] = "BR"
    df.loc[rng.choice(len(df), 20, replace=False), "country"] = np.nan
    df.loc[rng.choice(len(df), 10, replace=False), "n_items"] = np.nan
    return df.sample(frac=1.0, random_state=1).reset_index(drop=True)


@pytest.fixture(scope="module")
def scored(run):
    df = _new_rows()
    src = _write(df, run["root"] / "new.csv")
    out = run["root"] / "scored.csv"
    stats = run_json("score", "--model", run["summary"]["pushed_model"], "--input", str(src),
                     "--output", str(out))
    return {"input": df, "src": src, "out": out, "stats": stats,
            "frame": pd.read_csv(out, keep_default_na=False, dtype=str)}


def test_score_keeps_every_column_and_the_ids_in_input_order(scored):
    df, got = scored["input"], scored["frame"]
    assert list(got.columns) == HEADER + ["reconstruction_error", "is_anomaly", "top_features"]
    assert got["transaction_id"].tolist() == df["transaction_id"].tolist()
    assert got["timestamp"].tolist() == df["timestamp"].tolist()
    # input cells verbatim, empty ones included
    with open(scored["src"], newline="") as f:
        rows = list(csv.reader(f))[1:]
    assert got[HEADER].values.tolist() == rows
    assert scored["stats"]["rows"] == len(df)


def test_unseen_categories_and_empty_cells_are_scored(scored):
    df, got = scored["input"], scored["frame"]
    errors = got["reconstruction_error"].astype(float).to_numpy()
    assert np.isfinite(errors).all() and (errors >= 0).all()
    odd = (df["merchant_category"] == "crypto_exchange") | df["country"].isin(["BR"]) | \
        df["country"].isna() | df["amount"].isna() | df["n_items"].isna()
    assert odd.sum() > 60 and np.isfinite(errors[odd.to_numpy()]).all()
    # still ranks the frauds of new data
    assert roc_auc_score(df["is_fraud"], errors) >= 0.9
    # top_features names the original columns (one-hot and indicator inputs grouped back)
    named = {part.split(":")[0] for cell in got["top_features"] for part in cell.split(";")}
    assert named <= {"amount", "hour", "n_items", "merchant_category", "country"}
    assert "merchant_category" in named and "amount" in named


def _example(row) -> bytes:
    feature = {}
    for k in ("amount", "hour", "n_items"):
        if pd.notna(row[k]) and row[k] != "":
            feature[k] = tf.train.Feature(float_list=tf.train.FloatList(value=[float(row[k])]))
    for k in ("merchant_category", "country", "transaction_id"):
        if pd.notna(row[k]):
            feature[k] = tf.train.Feature(bytes_list=tf.train.BytesList(
                value=[str(row[k]).encode()]))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def test_serving_default_takes_bytes_features_and_missing_ones(run, scored):
    model = tf.saved_model.load(run["summary"]["pushed_model"])
    fn = model.signatures["serving_default"]
    df = scored["input"].head(300)
    out = fn(examples=tf.constant([_example(r) for _, r in df.iterrows()]))
    got = out["reconstruction_error"].numpy()
    want = scored["frame"]["reconstruction_error"].astype(float).to_numpy()[:300]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    flags = scored["frame"]["is_anomaly"].astype(int).to_numpy()[:300]
    np.testing.assert_array_equal(out["is_anomaly"].numpy().astype(int), flags)
    assert out["feature_errors"].shape == (300, 5)


def test_the_pyfunc_and_mlflow_serve_take_string_columns(run, scored):
    df = scored["input"].head(40)
    want = scored["frame"]["reconstruction_error"].astype(float).to_numpy()[:40]
    scorer = SavedModelScorer(run["summary"]["pushed_model"])
    direct = scorer.score_frame(df)["reconstruction_error"].to_numpy()
    np.testing.assert_allclose(direct, want, rtol=1e-5)
    # JSON: numbers as numbers, strings as strings, empty cells as null
    rows = [[None if pd.isna(v) else (float(v) if k in ("amount", "hour", "n_items") else v)
             for k, v in zip(df.columns, r)] for r in df.itertuples(index=False)]
    with registry_helpers.mlflow_serve(run["uri"], f"models:/{NAME}@champion",
                                       run["root"]) as base:
        predictions = registry_helpers.invoke(base, df.columns, rows)
    got = np.array([p["reconstruction_error"] for p in predictions])
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert [p["is_anomaly"] for p in predictions] == \
        scored["frame"]["is_anomaly"].astype(int).tolist()[:40]


def test_drift_compares_categories_not_ids(run, tmp_path):
    same = _write(_table(1500, seed=21), tmp_path / "same.csv")
    proc = cli_subprocess("drift", "--reference", str(run["out"]), "--data", str(same),
                          check=False)
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert report["drifted"] == []  # new ids and timestamps are not drift
    shifted = _table(1500, seed=22)
    shifted.loc[shifted.index[:700], "country"] = "FR"  # half the traffic moves abroad
    path = _write(shifted, tmp_path / "shifted.csv")
    proc = cli_subprocess("drift", "--reference", str(run["out"]), "--data", str(path),
                          check=False)
    assert proc.returncode == 3, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [f["feature"] for f in report["drifted"]] == ["country"]
