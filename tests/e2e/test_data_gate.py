"""The data gate in the real DAG: a first run pushes a model and writes the
reference schema; a shifted span is stopped before Transform and the Trainer
(exit 2, one readable line, nothing pushed); a fresh resample of the first
span's distribution passes, compared with the first span (the rejected span
never became the reference)."""
import json
import os

import pytest

from tests.helpers import cli_subprocess, make_data

pytestmark = pytest.mark.e2e


def _run(data, out, *extra):
    return cli_subprocess("run", "--data", data, "--label-column", "label", "--output", out,
                          "--epochs", "2", *extra, check=False)


def _versions(out):
    return sorted(os.listdir(out / "serving_model" / "anomaly_detector"))


def _newest_run_executions(out):
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2 as mlmd

    config = mlmd.ConnectionConfig()
    config.sqlite.filename_uri = str(out / "metadata.sqlite")
    store = metadata_store.MetadataStore(config)
    run = max(store.get_contexts_by_type("pipeline_run"), key=lambda c: c.id)
    names = {}
    for e in store.get_executions_by_context(run.id):
        node = [c.name.split(".")[-1] for c in store.get_contexts_by_execution(e.id)
                if store.get_context_types_by_id([c.type_id])[0].name == "node"]
        names[node[0]] = mlmd.Execution.State.Name(e.last_known_state)
    return names


@pytest.fixture(scope="module")
def dag(tmp_path_factory):
    root = tmp_path_factory.mktemp("gate")
    first, shifted, resample = root / "first.csv", root / "shifted.csv", root / "resample.csv"
    make_data(n_normal=300, n_outliers=15, seed=1).to_csv(first, index=False)
    df = make_data(n_normal=300, n_outliers=15, seed=2)
    df["x3"] += 1.5 * df["x3"].std()
    df.to_csv(shifted, index=False)
    make_data(n_normal=300, n_outliers=15, seed=3).to_csv(resample, index=False)
    out = root / "out"
    proc = _run(first, out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"out": out, "first": json.loads(proc.stdout.strip().splitlines()[-1]),
            "shifted": shifted, "resample": resample}


def test_first_blessed_run_writes_the_reference_schema(dag):
    s = dag["first"]
    assert s["pushed_model"] and s["data_gate"]["accepted"] is True
    assert s["data_gate"]["drift_checked"] is False  # nothing to compare with yet
    assert s["data_gate"]["reference_schema_created"] is True
    text = (dag["out"] / "reference" / "schema.pbtxt").read_text()
    assert 'name: "label"' in text and "int_domain" in text and 'name: "x7"' in text


def test_shifted_span_is_stopped_before_training_and_nothing_is_pushed(dag):
    out = dag["out"]
    before = _versions(out)
    proc = _run(dag["shifted"], out)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stdout.strip() == ""  # no summary: the run did not finish
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: data drift: new data rejected before training, the served "
                           "model is unchanged: feature x3: Jensen-Shannon divergence ")
    assert "Traceback" not in last and "rejected/" in last
    assert _versions(out) == before  # the previously pushed model is still the served one
    executions = _newest_run_executions(out)
    assert executions["DataGate"] == "FAILED"
    assert "Transform" not in executions and "Trainer" not in executions
    assert "Pusher" not in executions
    report_path = last.rsplit("(report: ", 1)[1].rstrip(")")
    report = json.loads(open(report_path).read())
    assert [f["feature"] for f in report["findings"]] == ["x3"]


def test_fresh_resample_passes_against_the_last_accepted_span(dag):
    out = dag["out"]
    proc = _run(dag["resample"], out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    s = json.loads(proc.stdout.strip().splitlines()[-1])
    gate = s["data_gate"]
    assert gate["accepted"] is True and gate["drift_checked"] is True
    assert gate["largest_drift"][0]["value"] < 0.1
    assert "reference_schema" in s["components"]["ran"] + s["components"]["cached"]
    report = json.loads(open(gate["report"]).read())
    # The baseline is the first span: the rejected shifted span never became it.
    first_report = json.loads(open(dag["first"]["data_gate"]["report"]).read())
    assert report["baseline"]["source_statistics_id"] == first_report["statistics"]["id"]
