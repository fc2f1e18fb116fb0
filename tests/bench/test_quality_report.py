"""bench/quality.py's aggregation and tables, on made-up results (no pipeline run)."""
from bench import quality


def _numeric(auc):
    return {m: {"roc_auc": auc, "pr_auc": 0.5, "f1": 0.4, "seconds": 1.0, "chosen": "x"}
            for m in quality.METHODS}


def _mixed(auc, delta=None):
    out = {"roc_auc": auc, "pr_auc": 0.4, "f1": 0.3, "blessed": True, "ids_in_order": True,
           "seconds": 2.0, "table": {"coded": ["f1"], "binned": {"f2_bin": [0, 1]}},
           "columns": {"numeric": ["f0"], "categorical": ["f1", "f2_bin", "segment"],
                       "passthrough": ["row_id", "event_time"], "missing_indicators": ["f0"]}}
    if delta is not None:
        out["delta_roc_auc"] = delta
    return out


def _doc(seeds, variants):
    return {"generated": "now", "seeds": [0, 1], "run_args": [], "variants": variants,
            "mixed_parts": list(quality.PARTS),
            "datasets": {"a": {"rows": 10, "features": 3, "anomaly_rate": 0.1, "seeds": seeds}}}


def test_both_variants_delta_and_bound():
    seeds = [dict({"seed": 0}, **_numeric(0.95), mixed=_mixed(0.93, -0.02)),
             dict({"seed": 1}, **_numeric(0.95), mixed=_mixed(0.90, -0.05))]
    doc = _doc(seeds, ["numeric", "mixed"])
    doc["summary"] = quality.aggregate(doc["datasets"])
    mixed = doc["datasets"]["a"]["mixed"]
    assert abs(mixed["mean"]["delta_roc_auc"] + 0.035) < 1e-9
    assert mixed["worst_delta_roc_auc"] == -0.05 and mixed["within_bound"] is False
    assert doc["summary"]["mixed"]["beyond_bound"] == ["a"]
    text = quality.markdown(doc)
    assert "## Numeric tables" in text and "## Mixed tables" in text
    assert "| a | 0.9500 | 0.9150" in text and "-0.0350" in text and "**no**" in text


def test_mixed_only_without_a_numeric_reference():
    seeds = [{"seed": 0, "mixed": _mixed(0.93)}, {"seed": 1, "mixed": {"error": "boom"}}]
    doc = _doc(seeds, ["mixed"])
    doc["summary"] = quality.aggregate(doc["datasets"])
    assert doc["datasets"]["a"]["mixed"]["within_bound"] is None
    assert doc["summary"]["mixed"]["beyond_bound"] == []
    text = quality.markdown(doc)
    assert "## Numeric tables" not in text and "n/a" in text and "mixed failed: boom" in text


def test_delta_from_an_earlier_numeric_run():
    r = {"seed": 0, "mixed": _mixed(0.90)}
    quality._delta_from(r, 0.95, "old.json")
    assert abs(r["mixed"]["delta_roc_auc"] + 0.05) < 1e-9
    assert r["mixed"]["numeric_roc_auc"] == 0.95
