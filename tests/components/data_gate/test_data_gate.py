"""The data gate before training (components/data_gate): the drift measure, the
reference schema files and the DataGate executor on real TFDV statistics
(tests/e2e/test_data_gate.py runs it in the real DAG)."""
import json
import os
import pickle

import numpy as np
import pandas as pd
import pytest

from components.data_gate import drift
from components.data_gate.errors import DataValidationError, find_in_chain

from tests.helpers import make_data

FEATURES = [f"x{i}" for i in range(8)]


@pytest.fixture(scope="module")
def tfdv():
    import logging

    import tensorflow_data_validation

    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    return tensorflow_data_validation


def _stats(tfdv, df):
    return tfdv.generate_statistics_from_dataframe(df.reset_index(drop=True))


def _schema(tfdv, stats):
    return drift.relax_schema(tfdv.infer_schema(stats), "label")


def _measure(tfdv, base, cur, js_threshold=0.1, linf_threshold=0.1):
    an = drift.compare(cur, base, _schema(tfdv, base), "label", js_threshold, linf_threshold)
    return {m.feature: m for m in drift.drift_measurements(an)}


# --------------------------------------------------------------------------- pure helpers


def test_cdf_is_linear_between_quantiles_and_splits_ties_at_their_middle():
    knots = (np.array([0.0, 0.0, 0.0, 1.0, 2.0]), np.array([0.0, 0.2, 0.4, 0.7, 1.0]))
    assert drift.cdf_at(knots, -1.0) == 0.0
    assert drift.cdf_at(knots, 0.0) == pytest.approx(0.2)   # jump 0 -> 0.4: its middle
    assert drift.cdf_at(knots, 0.5) == pytest.approx(0.55)
    assert drift.cdf_at(knots, 2.0) == pytest.approx(1.0)
    assert drift.cdf_at(knots, 9.0) == 1.0


def test_binned_masses_sum_to_one_and_keep_mass_outside_the_reference_range():
    base = (np.array([0.0, 1.0, 2.0]), np.array([0.0, 0.5, 1.0]))
    cur = (np.array([1.0, 3.0, 5.0]), np.array([0.0, 0.5, 1.0]))  # shifted up
    edges = drift.common_bins(base, cur)
    assert edges[0] < 0.0 and edges[-1] > 5.0
    mb, mc = drift.binned_masses(base, edges), drift.binned_masses(cur, edges)
    assert mb.sum() == pytest.approx(1.0) and mc.sum() == pytest.approx(1.0)
    assert mb[-1] == pytest.approx(0.0)        # nothing of the reference above its range
    assert mc[-1] == pytest.approx(0.75)       # 3/4 of the shifted data is above it


def test_resample_passes_and_a_one_sd_shift_fails(tfdv):
    base = _stats(tfdv, make_data(n_normal=300, n_outliers=15, seed=1))
    same = _measure(tfdv, base, _stats(tfdv, make_data(n_normal=300, n_outliers=15, seed=2)))
    assert set(same) == set(FEATURES) | {"label"}
    assert max(m.value for m in same.values()) < 0.06
    assert not drift.drifted(same.values())
    shifted_df = make_data(n_normal=300, n_outliers=15, seed=3)
    shifted_df["x3"] += shifted_df["x3"].std()
    shifted = _measure(tfdv, base, _stats(tfdv, shifted_df))
    assert [m.feature for m in drift.drifted(shifted.values())] == ["x3"]
    assert shifted["x3"].value > 0.15 and shifted["x3"].measure == drift.JS
    assert str(shifted["x3"]).startswith("feature x3: Jensen-Shannon divergence 0.")


def test_spiky_feature_resample_is_not_drift_although_tfdv_histograms_say_so(tfdv):
    # 96% of the rows are one value, a few outliers set the histogram's range:
    # two samples of the same distribution have different maxima.
    def sample(seed):
        rng = np.random.default_rng(seed)
        spike = np.where(rng.random(400) < 0.96, 0.0, rng.exponential(5.0, 400))
        return pd.DataFrame({"s": spike, "n": rng.normal(size=400),
                             "label": (rng.random(400) < 0.05).astype(int)})

    raw_js, ours = [], []
    for seed in range(4):
        a, b = _stats(tfdv, sample(2 * seed)), _stats(tfdv, sample(2 * seed + 1))
        schema = drift.with_drift_comparators(_schema(tfdv, a), "label", 0.1, 0.1)
        raw = tfdv.validate_statistics(b, schema, previous_statistics=a)  # TFDV as is
        raw_js.append({m.feature: m.value for m in drift.drift_measurements(raw)}["s"])
        ours.append(_measure(tfdv, a, b)["s"].value)
    assert max(ours) < 0.1, ours
    assert max(raw_js) > 0.1, raw_js  # why the histograms are aligned first


def test_label_share_change_is_an_l_infinity_drift(tfdv):
    base = _stats(tfdv, make_data(n_normal=300, n_outliers=15, seed=1))   # 5% anomalies
    poisoned = _stats(tfdv, make_data(n_normal=210, n_outliers=90, seed=2))  # 30%
    m = _measure(tfdv, base, poisoned)["label"]
    assert m.measure == drift.LINF and m.value == pytest.approx(0.30 - 15 / 315, abs=1e-6)
    assert m in drift.drifted([m])
    assert _measure(tfdv, base, poisoned, linf_threshold=0.3)["label"].value < 0.3


def test_reference_schema_checks_label_domain_and_tolerates_int_float(tfdv):
    df = make_data(n_normal=100, n_outliers=5, seed=1)
    schema = _schema(tfdv, _stats(tfdv, df))
    label = next(f for f in schema.feature if f.name == "label")
    assert (label.int_domain.min, label.int_domain.max) == (0, 1)
    assert not label.HasField("domain") and not schema.string_domain
    bad = df.copy()
    bad["label"] = bad["label"] * 2
    found = drift.anomaly_findings(tfdv.validate_statistics(_stats(tfdv, bad), schema))
    assert [f.feature for f in found] == ["label"] and "large value" in found[0].text
    ints = df.copy()
    ints["x0"] = ints["x0"].round().astype(int)     # a feature that happens to be whole
    ints["label"] = ints["label"].astype(float)      # "0.0"/"1.0" labels
    raw = tfdv.validate_statistics(_stats(tfdv, ints), schema)
    assert set(raw.anomaly_info) == {"x0", "label"}  # TFDV reports the type flips...
    assert drift.anomaly_findings(raw) == []          # ...which the gate tolerates
    missing = df.drop(columns=["x5"])
    found = drift.anomaly_findings(tfdv.validate_statistics(_stats(tfdv, missing), schema))
    assert [f.feature for f in found] == ["x5"]


def test_gate_error_is_one_line_picklable_and_survives_beam_wrapping():
    e = DataValidationError("new data rejected: feature x3: Jensen-Shannon divergence "
                            "0.31 > 0.10;\nfeature x7: ...", [{"feature": "x3"}], "/r/report.json")
    assert str(e) == ("data drift: new data rejected: feature x3: Jensen-Shannon divergence "
                      "0.31 > 0.10; feature x7: ... (report: /r/report.json)")
    again = pickle.loads(pickle.dumps(e))
    assert str(again) == str(e) and again.findings == [{"feature": "x3"}]
    wrapped = DataValidationError(str(e) + " [while running 'Run[DataGate]']")  # Beam's re-raise
    assert str(wrapped) == str(e)
    try:
        try:
            raise e
        except DataValidationError as inner:
            raise RuntimeError("component failed") from inner
    except RuntimeError as outer:
        assert find_in_chain(outer) is e
    assert find_in_chain(ValueError("x")) is None


def test_reference_schema_is_imported_by_content_and_retired_on_new_columns(tmp_path):
    from components.data_gate import reference_schema as reference

    out = str(tmp_path)
    assert reference.pipeline_schema_file(out) is None  # no reference before the first push
    os.makedirs(os.path.join(out, "reference"))
    path = reference.schema_path(out)
    with open(path, "w") as f:
        f.write('feature { name: "a" type: FLOAT }\nfeature { name: "label" type: INT }\n')
    first = reference.pipeline_schema_file(out)
    assert first == reference.pipeline_schema_file(out) and open(first).read() == open(path).read()
    with open(path, "a") as f:  # a curated edit gets a new snapshot: the cache cannot hide it
        f.write('feature { name: "b" type: FLOAT }\n')
    assert reference.pipeline_schema_file(out) != first
    assert reference.retire_if_columns_changed(out, ["b", "a", "label"]) is None
    retired = reference.retire_if_columns_changed(out, ["a", "c", "label"])
    assert retired.startswith(path + ".retired-") and os.path.exists(retired)
    assert reference.pipeline_schema_file(out) is None


# --------------------------------------------------------------------------- the executor


def _artifacts(tfdv, tmp_path, train_df, eval_df=None, schema_df=None, baseline_df=None):
    from tfx.types import artifact_utils, standard_artifacts
    from tfx.utils import io_utils

    from components.data_gate.component import AcceptedStatistics
    from components.data_gate.artifacts import STATS_FILE

    stats = standard_artifacts.ExampleStatistics()
    stats.uri = str(tmp_path / "stats")
    stats.split_names = artifact_utils.encode_split_names(["train", "eval"])
    for split, df in (("train", train_df), ("eval", train_df if eval_df is None else eval_df)):
        s = _stats(tfdv, df)
        io_utils.write_bytes_file(os.path.join(stats.uri, f"Split-{split}", "FeatureStats.pb"),
                                  s.SerializeToString())
    schema = standard_artifacts.Schema()
    schema.uri = str(tmp_path / "schema")
    io_utils.write_pbtxt_file(os.path.join(schema.uri, "schema.pbtxt"),
                              _schema(tfdv, _stats(tfdv, train_df if schema_df is None
                                                   else schema_df)))
    inputs = {"statistics": [stats], "schema": [schema]}
    if baseline_df is not None:
        base = AcceptedStatistics()
        base.uri = str(tmp_path / "baseline")
        io_utils.write_bytes_file(os.path.join(base.uri, STATS_FILE),
                                  _stats(tfdv, baseline_df).SerializeToString())
        inputs["baseline_statistics"] = [base]
    out = AcceptedStatistics()
    out.uri = str(tmp_path / "pipeline_root" / "DataGate" / "accepted_statistics" / "7")
    os.makedirs(out.uri)
    return inputs, {"accepted_statistics": [out]}, out


def _gate(inputs, outputs, **cfg):
    from components.data_gate.executor import Executor

    config = {"columns": {"label": "label"},
              "drift": {"js_threshold": 0.1, "linf_threshold": 0.1, **cfg}}
    Executor().Do(inputs, outputs, {"gate_config": json.dumps(config)})


def test_gate_accepts_a_first_span_without_baseline(tfdv, tmp_path):
    from components.data_gate.artifacts import load_accepted_statistics

    df = make_data(n_normal=200, n_outliers=10, seed=1)
    inputs, outputs, out = _artifacts(tfdv, tmp_path, df)
    _gate(inputs, outputs)
    report = json.loads(open(os.path.join(out.uri, "gate_report.json")).read())
    assert report["accepted"] and not report["drift_checked"] and report["findings"] == []
    saved = load_accepted_statistics(out.uri)
    assert len(saved.datasets) == 1 and saved.datasets[0].num_examples == len(df)
    assert out.get_string_custom_property("label_column") == "label"
    assert out.get_int_custom_property("rows") == len(df)


def test_gate_rejects_drift_with_a_readable_list_and_writes_no_output(tfdv, tmp_path):
    base = make_data(n_normal=200, n_outliers=10, seed=1)
    cur = make_data(n_normal=200, n_outliers=10, seed=2)
    cur["x3"] += 2 * cur["x3"].std()
    cur["x6"] *= 3
    inputs, outputs, out = _artifacts(tfdv, tmp_path, cur, schema_df=base, baseline_df=base)
    with pytest.raises(DataValidationError) as info:
        _gate(inputs, outputs)
    message = str(info.value)
    assert "\n" not in message and message.startswith(
        "data drift: new data rejected before training, the served model is unchanged: ")
    assert "feature x3: Jensen-Shannon divergence" in message and "> 0.10" in message
    assert "feature x6: Jensen-Shannon divergence" in message
    assert {f["feature"] for f in info.value.findings} == {"x3", "x6"}
    report_path = info.value.report_path
    assert report_path == str(tmp_path / "pipeline_root" / "DataGate" / "rejected" / "7"
                              / "gate_report.json")
    report = json.loads(open(report_path).read())
    assert report["accepted"] is False and report["drift_checked"] is True
    assert len(report["drift_measurements"]) == len(FEATURES) + 1
    assert not os.path.exists(os.path.join(out.uri, "FeatureStats.pb"))


def test_gate_with_drift_disabled_accepts_the_shift(tfdv, tmp_path):
    base = make_data(n_normal=200, n_outliers=10, seed=1)
    cur = make_data(n_normal=200, n_outliers=10, seed=2)
    cur["x3"] += 2 * cur["x3"].std()
    inputs, outputs, out = _artifacts(tfdv, tmp_path, cur, schema_df=base, baseline_df=base)
    _gate(inputs, outputs, enabled=False)
    assert os.path.exists(os.path.join(out.uri, "FeatureStats.pb"))


def test_gate_reports_schema_anomalies_of_every_split(tfdv, tmp_path):
    base = make_data(n_normal=200, n_outliers=10, seed=1)
    cur = make_data(n_normal=200, n_outliers=10, seed=2)
    cur.loc[cur.index[:30], "x2"] = np.nan    # absent in 15% of the examples
    inputs, outputs, _ = _artifacts(tfdv, tmp_path, cur, schema_df=base)
    with pytest.raises(DataValidationError) as info:
        _gate(inputs, outputs)
    assert ("feature x2: missing in 14% of rows (at most 0% expected) (train, eval split)"
            in str(info.value))


# --------------------------------------------------------------------------- mixed tables


def _mixed(n, seed, countries=("DE", "FR", "NL"), p=(0.7, 0.2, 0.1), empty=0.0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "txn_id": [f"T{seed}-{i}" for i in range(n)],           # passthrough: new every span
        "country": rng.choice(list(countries), size=n, p=list(p)),
        "amount": rng.gamma(2.0, 30.0, n),
        "label": (rng.random(n) < 0.05).astype(int)})
    if empty:
        df.loc[rng.random(n) < empty, "amount"] = np.nan
    return df


def _mixed_schema(tfdv, df, max_missing_share=0.2):
    return drift.relax_schema(tfdv.infer_schema(_stats(tfdv, df)), "label",
                              passthrough=["txn_id"], max_missing_share=max_missing_share)


def test_category_shares_drift_by_l_infinity_and_ids_are_not_compared(tfdv):
    base = _mixed(2000, 1)
    schema = _mixed_schema(tfdv, base)
    same = drift.compare(_stats(tfdv, _mixed(2000, 2)), _stats(tfdv, base), schema, "label",
                         0.1, 0.1, skip=["txn_id"])
    measured = {m.feature: m for m in drift.drift_measurements(same)}
    assert "txn_id" not in measured                      # every id is new: not drift
    assert measured["country"].measure == drift.LINF and measured["country"].value < 0.05
    assert drift.drifted(measured.values()) == []
    moved = _mixed(2000, 3, p=(0.3, 0.6, 0.1))            # traffic moves to FR
    an = drift.compare(_stats(tfdv, moved), _stats(tfdv, base), schema, "label", 0.1, 0.1,
                       skip=["txn_id"])
    drifted = drift.drifted(drift.drift_measurements(an))
    assert [m.feature for m in drifted] == ["country"]
    assert drifted[0].value == pytest.approx(0.4, abs=0.05)


def test_new_category_values_are_reported_not_stopping(tfdv):
    base = _mixed(1000, 1)
    schema = _mixed_schema(tfdv, base)
    new = _mixed(1000, 2, countries=("DE", "FR", "BR"))
    raw = tfdv.validate_statistics(_stats(tfdv, new), schema)
    assert drift.anomaly_findings(raw, passthrough=["txn_id"]) == []
    reported = drift.anomaly_findings(raw, reported=True, passthrough=["txn_id"])
    assert [f.feature for f in reported] == ["country"] and "BR" in reported[0].text


def test_empty_cells_are_tolerated_up_to_the_share_when_imputing(tfdv):
    base = _mixed(1000, 1)
    schema = _mixed_schema(tfdv, base, max_missing_share=0.2)
    some = tfdv.validate_statistics(_stats(tfdv, _mixed(1000, 2, empty=0.1)), schema)
    assert drift.anomaly_findings(some, passthrough=["txn_id"]) == []
    many = tfdv.validate_statistics(_stats(tfdv, _mixed(1000, 3, empty=0.4)), schema)
    found = drift.anomaly_findings(many, passthrough=["txn_id"])
    assert [f.feature for f in found] == ["amount"]
    # quarantining (share 0): a column without empty cells must stay so
    strict = _mixed_schema(tfdv, base, max_missing_share=0.0)
    some = tfdv.validate_statistics(_stats(tfdv, _mixed(1000, 2, empty=0.1)), strict)
    assert [f.feature for f in drift.anomaly_findings(some)] == ["amount"]


def test_the_reference_schema_holds_the_roles(tfdv, tmp_path):
    from components.columns import ColumnRoles
    from components.data_gate import reference_schema

    base = _mixed(500, 1)
    inferred = tmp_path / "inferred" / "schema.pbtxt"
    inferred.parent.mkdir()
    from google.protobuf import text_format

    inferred.write_text(text_format.MessageToString(tfdv.infer_schema(_stats(tfdv, base))))
    roles = ColumnRoles(label="label", numeric=("amount",), categorical=("country",),
                        passthrough=("txn_id",))
    path = reference_schema.write_reference_schema(str(tmp_path / "out"), str(inferred),
                                                   "label", "run-1", roles)
    schema = reference_schema.read_schema(path)
    assert reference_schema.roles_in(schema) == {"txn_id": "passthrough", "country": "categorical",
                                                 "amount": "numeric", "label": "label"}
    txn = next(f for f in schema.feature if f.name == "txn_id")
    assert not txn.HasField("domain") and not txn.presence.HasField("min_fraction")
    # tagging twice keeps one role tag
    again = reference_schema.tag_roles(schema, roles)
    assert [t for f in again.feature for t in f.annotation.tag].count("role:numeric") == 1
