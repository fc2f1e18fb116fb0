"""Scheduled, incremental runs over span folders, for real (tiny data, 3 epochs).

Day 1: `--data` holds span-1 -> model version 1 (BeamDagRunner).
Day 2: span-2 arrives -> the run ingests span-2, trains on spans 1+2
       (`--window 2`), evaluates against version 1 and pushes version 2.
Rerun with nothing new -> every data/training component is a cache hit.
Separately: a first run over existing spans ingests the window's older spans.
"""
import json
import os
import subprocess
import sys

import pytest

from tests.helpers import make_data
from tests.helpers import run_json as cli

pytestmark = pytest.mark.e2e

ROWS_PER_SPAN = 300
# 3 epochs on ~60 eval rows per span make the baseline comparison noisy; a
# wide tolerance keeps this about orchestration (the comparison still runs).
COMMON = ["--label-column", "label", "--epochs", "3", "--window", "2",
          "--baseline-tolerance", "0.5"]


def write_span(data_dir, number, seed):
    d = data_dir / f"span-{number}"
    d.mkdir(parents=True)
    n_out = ROWS_PER_SPAN // 20
    make_data(n_normal=ROWS_PER_SPAN - n_out, n_outliers=n_out, seed=seed).to_csv(
        d / "part-0.csv", index=False)


def versions(out):
    root = out / "serving_model" / "anomaly_detector"
    return sorted(p.name for p in root.iterdir() if p.name.isdigit()) if root.exists() else []


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("spans")
    data, out = root / "data", root / "out"
    write_span(data, 1, seed=101)
    # Day 1 on the Beam runner: its --beam-arg passthrough overrides the
    # multi_processing default (slow on 2 cores; measured in the README).
    day1 = cli("run", "--data", str(data), "--output", str(out), "--runner", "beam",
               "--beam-arg=--direct_running_mode=in_memory", *COMMON)
    v1 = versions(out)
    write_span(data, 2, seed=102)
    day2 = cli("run", "--data", str(data), "--output", str(out), *COMMON)
    v2 = versions(out)
    rerun = cli("run", "--data", str(data), "--output", str(out), *COMMON)
    return {"out": out, "day1": day1, "day2": day2, "rerun": rerun, "v1": v1, "v2": v2}


def test_day1_trains_on_the_only_span(runs):
    s = runs["day1"]
    assert s["blessed"] and s["pushed_model"]
    assert s["spans"]["newest"] == "span-1" and s["spans"]["trained_on_spans"] == [1]
    assert s["baseline"] is None
    assert len(runs["v1"]) == 1
    assert "span_window_resolver" in s["components"]["ran"]


def test_day2_ingests_the_new_span_trains_on_the_window_and_compares(runs):
    s, day1 = runs["day2"], runs["day1"]
    assert s["spans"]["newest"] == "span-2"
    assert s["spans"]["trained_on_spans"] == [1, 2]
    assert s["spans"]["backfilled"] == []  # span-1 was ingested on day 1
    # Two spans of normal rows: about twice day 1's training rows.
    assert s["train_rows"] > 1.6 * day1["train_rows"]
    assert "CsvExampleGen" in s["components"]["ran"]
    # Evaluated against day 1's model, and a second version pushed.
    assert s["baseline"] is not None and s["baseline"]["model_uri"]
    with open(s["evaluation"], encoding="utf-8") as f:
        evaluation = json.load(f)
    assert evaluation["baseline"] is not None
    assert evaluation["baseline"]["model_uri"] == s["baseline"]["model_uri"]
    assert s["blessed"] and s["pushed_model"]
    assert len(runs["v2"]) == 2
    assert os.path.basename(s["pushed_model"]) == runs["v2"][-1] != runs["v1"][0]


def test_rerun_with_nothing_new_hits_the_cache(runs):
    s = runs["rerun"]
    cached, ran = set(s["components"]["cached"]), set(s["components"]["ran"])
    assert {"CsvExampleGen", "StatisticsGen", "SchemaGen", "Transform", "Trainer"} <= cached
    assert not ({"CsvExampleGen", "Transform", "Trainer"} & ran)
    assert s["spans"]["trained_on_spans"] == [1, 2]


def test_first_run_over_existing_spans_backfills_the_window(tmp_path):
    """The ingest step alone (no training): spans of the window that ML
    Metadata has not seen are ingested once."""
    from pipeline import inputs, lineage, metadata
    from pipeline.config import build_config

    data = tmp_path / "data"
    for n in (1, 2, 3):
        write_span(data, n, seed=200 + n)
    cfg = build_config(overrides={"data": {"path": str(data), "label_column": "label",
                                           "window": 2}, "output": str(tmp_path / "out")})
    plan = inputs.plan(cfg)
    conn = metadata.connection_config(cfg)
    assert [s.number for s in plan.selected] == [2, 3]
    assert inputs.backfill(cfg, plan, conn) == [2]  # span 3 is the run's own
    assert lineage.ingested_spans(conn, cfg.pipeline_name, "CsvExampleGen") == [2]
    assert inputs.backfill(cfg, plan, conn) == []
