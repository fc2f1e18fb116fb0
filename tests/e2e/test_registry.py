"""Registry handoff end to end: two real pipeline runs into one --output.

Run 1 trains and pushes; run 2 changes the threshold rule (the Trainer is
cached, the evaluator re-runs and blesses the same model) and pushes again.
Then: MLflow lists two versions with the handoff tags, `champion` is the
newest blessed one, registry.json says the same, the registered model loads
with mlflow.pyfunc and scores exactly like the SavedModel, `mlflow models
serve` answers /invocations over HTTP, and `score --model models:/...@champion`
scores like direct SavedModel calls.
"""
import json
import os

import numpy as np
import pandas as pd
import pytest

from components.model.scorer import SavedModelScorer
from tests.helpers import run_json as cli
from tests.helpers import registry as registry_helpers

pytestmark = pytest.mark.e2e

FEATURES = [f"v{i}" for i in range(6)]
NAME = "fraud_ae"


def make_data(n_normal=500, n_outliers=20, seed=11):
    mix = np.random.default_rng(0).normal(size=(2, len(FEATURES)))
    rng = np.random.default_rng(seed)
    normal = rng.normal(size=(n_normal, 2)) @ mix + 0.05 * rng.normal(size=(n_normal, 6))
    outliers = rng.uniform(-4, 4, size=(n_outliers, 6))
    df = pd.DataFrame(np.vstack([normal, outliers]) * 10 + 50, columns=FEATURES)
    df["label"] = np.r_[np.zeros(n_normal, int), np.ones(n_outliers, int)]
    return df.sample(frac=1.0, random_state=seed).reset_index(drop=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("registry_e2e")
    cwd = root / "cwd"
    cwd.mkdir()
    data = root / "train.csv"
    make_data().to_csv(data, index=False)
    out = root / "out"
    common = ["run", "--data", str(data), "--label-column", "label", "--output", str(out),
              "--model-name", NAME, "--epochs", "2"]
    first = cli(*common, cwd=cwd)
    second = cli(*common, "--threshold-method", "quantile", cwd=cwd)
    uri = "sqlite:///" + str(out / "mlflow.db")
    return {"root": root, "cwd": cwd, "data": data, "out": out, "uri": uri,
            "first": first, "second": second}


@pytest.fixture(scope="module")
def versions(runs):
    return registry_helpers.list_versions(runs["uri"], NAME)


def test_two_runs_two_versions_champion_is_the_newest_blessed(runs, versions):
    assert runs["first"]["blessed"] and runs["second"]["blessed"]
    assert runs["first"]["pushed_model"] != runs["second"]["pushed_model"]
    assert [v["version"] for v in versions] == ["1", "2"]
    assert [v["aliases"] for v in versions] == [[], ["champion"]]
    for v, summary in zip(versions, (runs["first"], runs["second"])):
        tags = v["tags"]
        assert tags["saved_model_path"] == summary["pushed_model"]
        assert tags["serving_version"] == os.path.basename(summary["pushed_model"])
        assert float(tags["threshold"]) == pytest.approx(summary["threshold"])
        assert tags["threshold_method"] == summary["threshold_method"]
        assert float(tags["metrics.roc_auc"]) == pytest.approx(summary["metrics"]["roc_auc"])
        assert tags["pipeline_run_id"] == summary["run_id"]
        assert tags["data_path"] == str(runs["data"]) and tags["data_span"] == "0"
        assert tags["schema_digest"].startswith("sha256:") and tags["blessed"] == "true"
    assert versions[0]["tags"]["threshold_method"] == "auto"  # the default
    assert versions[1]["tags"]["threshold_method"] == "quantile"
    assert versions[0]["tags"]["schema_digest"] == versions[1]["tags"]["schema_digest"]


def test_summary_names_the_registered_version(runs):
    for summary, version in ((runs["first"], "1"), (runs["second"], "2")):
        assert summary["registry"] == {
            "uri": runs["uri"], "name": NAME, "version": version, "champion": version,
            "manifest": str(runs["out"] / "registry.json")}
    assert runs["second"]["components"]["cached"]  # upstream reused, only a re-evaluation


def test_registry_json_matches_the_registry(runs, versions):
    with open(runs["out"] / "registry.json") as f:
        manifest = json.load(f)
    assert manifest["name"] == NAME and manifest["registry_uri"] == runs["uri"]
    assert manifest["champion"] == "2"
    assert manifest["champion_saved_model_path"] == runs["second"]["pushed_model"]
    assert [e["version"] for e in manifest["versions"]] == ["1", "2"]
    assert [e["champion"] for e in manifest["versions"]] == [False, True]
    for entry, v in zip(manifest["versions"], versions):
        tags = v["tags"]
        assert entry["registered"] is True and entry["error"] is None
        for key in ("saved_model_path", "serving_version", "threshold_method",
                    "pipeline_run_id", "data_path", "schema_digest"):
            assert str(entry[key]) == tags[key], key
        assert repr(entry["threshold"]) == tags["threshold"]
        assert entry["data_span"] == 0
        assert {f"metrics.{k}": repr(x) for k, x in entry["metrics"].items()} == {
            k: x for k, x in tags.items() if k.startswith("metrics.")}


def test_nothing_written_to_the_working_directory(runs):
    assert os.listdir(runs["cwd"]) == []
    assert (runs["out"] / "mlruns").is_dir() and (runs["out"] / "mlflow.db").is_file()


def _frame(seed=3, n=200):
    df = make_data(n_normal=n, n_outliers=10, seed=seed)
    return df


def test_pyfunc_champion_equals_savedmodel(runs, monkeypatch):
    import mlflow

    monkeypatch.chdir(runs["root"])  # MLflow's client creates ./mlruns
    mlflow.set_tracking_uri(runs["uri"])
    try:
        model = mlflow.pyfunc.load_model(f"models:/{NAME}@champion")
    finally:
        mlflow.set_tracking_uri(None)
    df = _frame()
    got = model.predict(df)  # raw features, label column included (ignored)
    direct = SavedModelScorer(runs["second"]["pushed_model"])
    want = direct.score_matrix(df[direct.features].to_numpy(np.float32))
    np.testing.assert_array_equal(got["reconstruction_error"].to_numpy(np.float32),
                                  want["reconstruction_error"])
    np.testing.assert_array_equal(got["is_anomaly"].to_numpy(), want["is_anomaly"].astype(int))
    assert 0 < got["is_anomaly"].sum() < len(df)


def test_mlflow_models_serve_answers_invocations(runs):
    df = _frame(seed=5, n=50)
    with registry_helpers.mlflow_serve(runs["uri"], f"models:/{NAME}@champion",
                                       runs["root"]) as base:
        predictions = registry_helpers.invoke(base, df.columns, df.to_numpy().tolist())
    direct = SavedModelScorer(runs["second"]["pushed_model"])
    want = direct.score_matrix(df[direct.features].to_numpy(np.float32))
    assert len(predictions) == len(df)
    np.testing.assert_array_equal(
        np.array([p["reconstruction_error"] for p in predictions], dtype=np.float32),
        want["reconstruction_error"])
    assert [p["is_anomaly"] for p in predictions] == want["is_anomaly"].astype(int).tolist()


def test_score_from_the_registry_equals_direct_scoring(runs):
    df = _frame(seed=8, n=300)
    src = runs["root"] / "new.csv"
    df.to_csv(src, index=False)
    for model_uri, summary in ((f"models:/{NAME}@champion", runs["second"]),
                               (f"models:/{NAME}/1", runs["first"])):
        out = runs["root"] / "scored.csv"
        stats = cli("score", "--model", model_uri, "--registry-uri", runs["uri"],
                    "--input", str(src), "--output", str(out), cwd=runs["cwd"])
        assert stats["model"] == summary["pushed_model"]
        assert stats["registry"]["model_uri"] == model_uri
        scored = pd.read_csv(out)
        direct = SavedModelScorer(summary["pushed_model"])
        want = direct.score_matrix(df[direct.features].to_numpy(np.float32))
        np.testing.assert_array_equal(scored["reconstruction_error"].to_numpy(np.float32),
                                      want["reconstruction_error"])
        np.testing.assert_array_equal(scored["is_anomaly"].to_numpy(),
                                      want["is_anomaly"].astype(int))
        pd.testing.assert_frame_equal(scored[df.columns], df)
    # MLFLOW_TRACKING_URI works in place of --registry-uri.
    stats = cli("score", "--model", f"models:/{NAME}@champion", "--input", str(src),
                "--output", str(runs["root"] / "scored2.csv"), cwd=runs["cwd"],
                env=dict(os.environ, MLFLOW_TRACKING_URI=runs["uri"]))
    assert stats["registry"]["version"] == "2"
    assert os.listdir(runs["cwd"]) == []
