"""Runners and orchestration without running the DAG: span folders and the
input plan, the window resolver, MySQL metadata config, Beam arguments, the
KFP v2 compile, and the Airflow DAG file's construction (tests/e2e/test_spans.py
and tests/e2e/test_airflow.py run them for real)."""
import datetime
import json
import os
import subprocess
import sys
import textwrap

import pytest

from pipeline import cli, inputs, metadata, spans
from pipeline.config import ConfigError, build_config
from components.errors import InputError
from tests.helpers import one_error_line

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HEADER = "x0,x1,label\n"


def _span_tree(root, names, rows="1,2,0\n3,4,1\n"):
    for n in names:
        d = root / n
        d.mkdir(parents=True)
        (d / "part.csv").write_text(HEADER + rows)
    return root


# --------------------------------------------------------------------------- spans


def test_span_folders_are_detected_and_ordered_by_number(tmp_path):
    _span_tree(tmp_path, ["span-10", "span-2", "span-1"])
    (tmp_path / "notes").mkdir()  # unrelated folders are ignored
    assert spans.detect_pattern(str(tmp_path)) == spans.SPAN_PATTERN
    found = spans.list_spans(str(tmp_path), spans.SPAN_PATTERN)
    assert [s.number for s in found] == [1, 2, 10]  # numeric, not lexical, order
    assert [s.name for s in spans.select(found, 2)] == ["span-2", "span-10"]
    assert [s.name for s in spans.select(found, 5)] == ["span-1", "span-2", "span-10"]


def test_dated_folders_get_tfx_span_numbers(tmp_path):
    _span_tree(tmp_path, ["2024-05-01", "2024-04-30"])
    assert spans.detect_pattern(str(tmp_path)) == spans.DATE_PATTERN
    found = spans.list_spans(str(tmp_path), spans.DATE_PATTERN)
    epoch = datetime.date(1970, 1, 1)
    assert [s.number for s in found] == [(datetime.date(2024, 4, 30) - epoch).days,
                                         (datetime.date(2024, 5, 1) - epoch).days]
    # TFX's own conversion agrees (tfx.components.example_gen.utils).
    from tfx.components.example_gen import utils

    assert found[-1].number == utils.date_to_span_number(2024, 5, 1)


def test_plain_inputs_are_not_spans(tmp_path):
    (tmp_path / "a.csv").write_text(HEADER)
    assert spans.detect_pattern(str(tmp_path)) is None
    assert spans.detect_pattern(str(tmp_path / "a.csv")) is None


@pytest.mark.parametrize("names, needle", [
    (["span-1", "2024-01-01"], "both"),
    (["span-1", "span-x"], "does not match"),
    (["span-1", "span-01"], "same span number"),
])
def test_ambiguous_span_folders_are_input_errors(tmp_path, names, needle):
    _span_tree(tmp_path, names)
    with pytest.raises(InputError) as e:
        spans.list_spans(str(tmp_path), spans.detect_pattern(str(tmp_path)))
    assert needle in str(e.value)


def test_csv_files_beside_span_folders_are_ambiguous(tmp_path):
    _span_tree(tmp_path, ["span-1"])
    (tmp_path / "loose.csv").write_text(HEADER)
    with pytest.raises(InputError, match="both \\*.csv files and span folders"):
        spans.detect_pattern(str(tmp_path))


def test_invalid_date_folder_is_an_input_error(tmp_path):
    _span_tree(tmp_path, ["2024-02-30"])
    with pytest.raises(InputError, match="not a valid date"):
        spans.list_spans(str(tmp_path), spans.DATE_PATTERN)


@pytest.mark.parametrize("pattern, ok", [
    ("span-{SPAN}/*.csv", True),
    ("{YYYY}-{MM}-{DD}/*.csv", True),
    ("day={YYYY}{MM}{DD}/*.csv", True),
    ("batch_{SPAN:3}/*.csv", True),
    ("span-{SPAN}/part-*.csv", False),   # a span is a folder of *.csv
    ("span-{SPAN}.csv", False),
    ("a/{SPAN}/*.csv", False),
    ("{YYYY}-{MM}/*.csv", False),
    ("{SPAN}-{YYYY}-{MM}-{DD}/*.csv", False),
    ("span-{SPAN}-{VERSION}/*.csv", False),
])
def test_span_pattern_is_validated_in_the_config(pattern, ok):
    if ok:
        assert build_config(overrides={"data": {"span_pattern": pattern}}).data.span_pattern \
            == pattern
    else:
        with pytest.raises(ConfigError, match="span_pattern"):
            build_config(overrides={"data": {"span_pattern": pattern}})


def test_custom_span_pattern_lists_its_folders(tmp_path):
    _span_tree(tmp_path, ["batch_007", "batch_012", "other"])
    found = spans.list_spans(str(tmp_path), "batch_{SPAN:3}/*.csv")
    assert [s.number for s in found] == [7, 12]


@pytest.mark.parametrize("window", [0, -1, 1.5])
def test_window_must_be_a_positive_integer(window):
    with pytest.raises(ConfigError, match="window"):
        build_config(overrides={"data": {"window": window}})


def test_plan_checks_only_the_window_and_refuses_mismatched_columns(tmp_path):
    data = _span_tree(tmp_path / "data", ["span-1", "span-2", "span-3"])
    # span-1 is outside a window of 2, so its broken file is not read.
    (data / "span-1" / "part.csv").write_text("garbage\x00\n")
    cfg = build_config(overrides={"data": {"path": str(data), "label_column": "label",
                                           "window": 2, "min_rows": 2},
                                  "output": str(tmp_path / "out")})
    plan = inputs.plan(cfg)
    assert [s.name for s in plan.selected] == ["span-2", "span-3"]
    assert plan.newest.number == 3 and plan.rows == 4 and plan.quarantined_rows == 0
    assert plan.input_base == str(data) and plan.pattern == spans.SPAN_PATTERN
    assert plan.columns == ("x0", "x1", "label")
    (data / "span-2" / "part.csv").write_text("x0,x9,label\n1,2,0\n")
    with pytest.raises(InputError, match="columns differ from span folder span-2/"):
        inputs.plan(cfg)


def test_quarantined_span_rows_move_the_input_to_a_clean_mirror(tmp_path):
    data = _span_tree(tmp_path / "data", ["span-1", "span-2"],
                      rows="1,2,0\n3,4,0\n5,6,0\n")
    # an infinite value is set aside (empty cells are imputed by default)
    (data / "span-2" / "part.csv").write_text(HEADER + "1,2,0\ninf,4,0\n5,6,0\n")
    cfg = build_config(overrides={"data": {"path": str(data), "label_column": "label",
                                           "window": 2, "min_rows": 2},
                                  "output": str(tmp_path / "out")})
    plan = inputs.plan(cfg)
    assert plan.quarantined_rows == 1
    mirror = tmp_path / "out" / "quarantine" / "spans"
    assert plan.input_base == str(mirror) and plan.pattern == "span-{SPAN}/clean/*.csv"
    assert (mirror / "span-2" / "clean" / "part.csv").read_text().count("\n") == 3
    assert (mirror / "span-1" / "clean" / "part.csv").read_text() == \
        (data / "span-1" / "part.csv").read_text()
    # mtime kept, so ExampleGen's input fingerprint (and the cache) is stable.
    assert int(os.stat(mirror / "span-1" / "clean" / "part.csv").st_mtime) == \
        int(os.stat(data / "span-1" / "part.csv").st_mtime)


def test_window_needs_span_folders(main, tmp_path):
    data = tmp_path / "d.csv"
    data.write_text(HEADER + "1,2,0\n")
    code, out, err = main("run", "--data", str(data), "--window", "3",
                           "--output", str(tmp_path / "o"))
    assert code == 2 and out == ""
    assert "span folders" in one_error_line(err)


def test_run_refuses_a_remote_output(main, tmp_path):
    code, out, err = main("run", "--data", "d.csv", "--output", "gs://b/runs")
    assert code == 2 and out == ""
    assert "compile --target kubeflow-v2" in one_error_line(err)


def test_window_flag_and_span_pattern_reach_the_config(tmp_path):
    args = cli.build_parser().parse_args(
        ["run", "--data", "d", "--window", "4", "--span-pattern", "{YYYY}-{MM}-{DD}/*.csv",
         "--metadata-mysql", "db:3306/tfx"])
    from pipeline.cli import run

    cfg = run.build(args)
    assert cfg.data.window == 4 and cfg.data.span_pattern == "{YYYY}-{MM}-{DD}/*.csv"
    assert cfg.metadata_mysql == "db:3306/tfx"


# --------------------------------------------------------------------------- window resolver


def _examples(id_, span, version=0):
    from tfx.types import standard_artifacts

    a = standard_artifacts.Examples()
    a.id = id_
    a.set_int_custom_property("span", span)
    a.set_int_custom_property("version", version)
    return a


def test_latest_spans_strategy_keeps_the_newest_k_spans_once_each():
    from pipeline.span_window import LatestSpansStrategy

    arts = [_examples(1, 1), _examples(2, 2), _examples(3, 3), _examples(4, 2),
            _examples(5, 3, version=1), _examples(6, 3)]
    out = LatestSpansStrategy(num_spans=2).resolve_artifacts(None, {"examples": arts})
    # span 3: version 1 beats a newer artifact of version 0; span 2: the newer artifact.
    assert [(a.id, a.get_int_custom_property("span")) for a in out["examples"]] == \
        [(5, 3), (4, 2)]
    assert LatestSpansStrategy(num_spans=5).resolve_artifacts(
        None, {"examples": arts[:1]})["examples"][0].id == 1
    assert LatestSpansStrategy(num_spans=2).resolve_artifacts(None, {"examples": []}) is None
    with pytest.raises(ValueError):
        LatestSpansStrategy(num_spans=0)


def test_window_adds_the_resolver_only_for_span_inputs():
    from pipeline.dag import create_pipeline
    from pipeline.span_window import SPAN_WINDOW_RESOLVER_ID

    cfg = build_config(overrides={"data": {"window": 3}, "output": "/tmp/x"})
    p = create_pipeline(cfg, inputs.InputPlan("/data", spans.SPAN_PATTERN))
    ids = [c.id for c in p.components]
    assert SPAN_WINDOW_RESOLVER_ID in ids
    by_id = {c.id: c for c in p.components}
    window = by_id[SPAN_WINDOW_RESOLVER_ID]
    assert by_id["CsvExampleGen"] in window.upstream_nodes
    # Transform and the Trainer read the window; statistics the newest span.
    assert by_id["Transform"].inputs["examples"] is window.outputs["examples"]
    assert by_id["Trainer"].inputs["examples"] is window.outputs["examples"]
    assert by_id["StatisticsGen"].inputs["examples"] is \
        by_id["CsvExampleGen"].outputs["examples"]
    plain = create_pipeline(cfg, inputs.InputPlan("/data", "*.csv"))
    assert SPAN_WINDOW_RESOLVER_ID not in [c.id for c in plain.components]


# --------------------------------------------------------------------------- metadata


def test_sqlite_metadata_is_the_default(tmp_path):
    cfg = build_config(overrides={"output": str(tmp_path)})
    conn = metadata.connection_config(cfg)
    assert conn.WhichOneof("config") == "sqlite"
    assert conn.sqlite.filename_uri == str(tmp_path / "metadata.sqlite")


def test_mysql_metadata_config_takes_the_account_from_the_environment():
    cfg = build_config(overrides={"metadata_mysql": "mysql.internal:3307/tfx_md"})
    env = {metadata.MYSQL_USER_ENV: "tfx", metadata.MYSQL_PASSWORD_ENV: "s3cret"}
    conn = metadata.connection_config(cfg, env)
    assert conn.WhichOneof("config") == "mysql"
    assert (conn.mysql.host, conn.mysql.port, conn.mysql.database) == \
        ("mysql.internal", 3307, "tfx_md")
    assert (conn.mysql.user, conn.mysql.password) == ("tfx", "s3cret")
    assert "s3cret" not in cfg.to_json()
    assert metadata.describe(cfg) == "mysql://mysql.internal:3307/tfx_md"
    # The runners build their connection from the environment.
    os.environ[metadata.MYSQL_USER_ENV] = "u"
    try:
        assert metadata.connection_config(cfg).mysql.user == "u"
    finally:
        del os.environ[metadata.MYSQL_USER_ENV]


def test_mysql_port_defaults_to_3306():
    t = metadata.parse_mysql("db/tfx")
    assert (t.host, t.port, t.database) == ("db", 3306, "tfx")


@pytest.mark.parametrize("spec", ["db", "db:port/x", "db:99999/x", "user@db/x", "db/", ""])
def test_bad_mysql_spec_is_a_config_error(spec):
    with pytest.raises(ConfigError, match="metadata_mysql|HOST"):
        build_config(overrides={"metadata_mysql": spec})


# --------------------------------------------------------------------------- beam


def test_beam_runner_defaults_to_multi_processing_and_passes_args_through(monkeypatch):
    from pipeline import beam_staging
    from pipeline.runners import beam

    monkeypatch.setattr(beam_staging, "build_project_sdist", lambda: "/c/p.tar.gz")
    args = beam.beam_args(build_config())
    assert "--direct_running_mode=multi_processing" in args
    assert f"--direct_num_workers={os.cpu_count() or 1}" in args
    assert not any(a.startswith("--extra_package") for a in args)
    user = ["--direct_num_workers=1"]
    assert beam.beam_args(build_config(overrides={"beam_args": user}))[-1] == user[0]
    # Another runner: this project's sdist is staged (tests/pipeline/test_beam_staging.py),
    # so TFX stages no sdist of itself.
    portable = ["--runner=PortableRunner", "--job_endpoint=localhost:8099"]
    assert beam.beam_args(build_config(overrides={"beam_args": portable})) == \
        portable + ["--extra_package=/c/p.tar.gz"]
    with_setup = portable + ["--setup_file=/src/setup.py"]
    assert beam.beam_args(build_config(overrides={"beam_args": with_setup})) == with_setup


# --------------------------------------------------------------------------- kubeflow v2


@pytest.mark.slow
def test_compile_writes_a_kfp_v2_spec_with_every_component(tmp_path):
    out = tmp_path / "spec" / "pipeline.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "compile", "--target", "kubeflow-v2",
         "--output", str(out), "--data", "gs://bucket/data/span-data",
         "--span-pattern", "span-{SPAN}/*.csv", "--pipeline-root", "gs://bucket/anomaly",
         "--image", "europe-docker.pkg.dev/p/r/anomaly:1", "--label-column", "label"],
        capture_output=True, text=True, timeout=600, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["output"] == str(out)
    spec = json.loads(out.read_text())
    tasks = spec["pipelineSpec"]["root"]["dag"]["tasks"]
    from pipeline.dag import COMPONENT_IDS

    for cid in COMPONENT_IDS:
        # A Resolver compiles to one or two resolver tasks named after its id.
        assert any(t == cid or t.startswith(cid + "-") for t in tasks), (cid, sorted(tasks))
    assert spec["runtimeConfig"]["gcsOutputDirectory"] == "gs://bucket/anomaly/pipeline_root"
    executors = spec["pipelineSpec"]["deploymentSpec"]["executors"]
    images = {e["container"]["image"] for e in executors.values() if "container" in e}
    assert images == {"europe-docker.pkg.dev/p/r/anomaly:1"}
    text = out.read_text()
    assert "span-{SPAN}/*.csv" in text and "gs://bucket/data/span-data" in text
    assert "gs://bucket/anomaly/serving_model/anomaly_detector" in text
    assert not (tmp_path / "gs:").exists()  # remote paths are not made local


def test_compile_refuses_a_window_it_cannot_express(main, tmp_path):
    code, out, err = main("compile", "--target", "kubeflow-v2", "--output",
                           str(tmp_path / "p.json"), "--data", "gs://b/d",
                           "--pipeline-root", "gs://b/r", "--window", "3")
    assert code == 2 and out == ""
    assert "--window" in one_error_line(err)
    assert not (tmp_path / "p.json").exists()


def test_compile_usage_errors(main, tmp_path):
    code, _, err = main("compile", "--target", "argo", "--output", "p.json",
                         "--data", "d", "--pipeline-root", "r")
    assert code == 2 and "--target" in one_error_line(err)


# --------------------------------------------------------------------------- airflow


_DAG_PROBE = textwrap.dedent("""
    import importlib.util, json, os, sys
    spec = importlib.util.spec_from_file_location("anomaly_dag", sys.argv[1])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    dag = mod.DAG
    print(json.dumps({
        "type": type(dag).__module__ + "." + type(dag).__name__,
        "dag_id": dag.dag_id, "schedule": str(dag.schedule_interval),
        "catchup": dag.catchup,
        "tasks": {t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks},
        "description": dag.description}))
""")


def _probe_dag(tmp_path, **env_vars):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW", "ANOMALY_PIPELINE_"))}
    env.update({"AIRFLOW_HOME": str(tmp_path / "airflow"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN":
                    "sqlite:///" + str(tmp_path / "airflow.db"),
                "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore", **env_vars})
    dag_file = os.path.join(ROOT, "pipeline", "runners", "airflow_dag.py")
    proc = subprocess.run([sys.executable, "-c", _DAG_PROBE, dag_file], env=env,
                          capture_output=True, text=True, timeout=600, cwd=str(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_airflow_dag_file_builds_the_pipeline_dag(tmp_path):
    from pipeline.dag import COMPONENT_IDS

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model": {"epochs": 2},
                                  "airflow": {"schedule": "0 3 * * *", "retries": 1}}))
    _span_tree(tmp_path / "spans", ["span-1", "span-2"])
    dag = _probe_dag(tmp_path, ANOMALY_PIPELINE_CONFIG=str(config),
                     ANOMALY_PIPELINE_DATA=str(tmp_path / "spans"),
                     ANOMALY_PIPELINE_WINDOW="2",
                     ANOMALY_PIPELINE_OUTPUT=str(tmp_path / "out"))
    assert dag["type"] == "airflow.models.dag.DAG"
    assert dag["dag_id"] == "anomaly-pipeline"
    assert dag["schedule"] == "0 3 * * *" and dag["catchup"] is False
    tasks = dag["tasks"]
    assert set(COMPONENT_IDS) <= set(tasks), sorted(tasks)
    assert "span_window_resolver" in tasks and "check_inputs" in tasks
    assert tasks["CsvExampleGen"] == ["check_inputs"]
    assert "CsvExampleGen" in tasks["span_window_resolver"]
    assert {"Trainer", "latest_blessed_model_resolver"} <= set(tasks["AnomalyEvaluator"])
    assert "AnomalyEvaluator" in tasks["Pusher"]
    # Parsing did no pipeline work (TFX's SQLite config helper only makes the folder).
    out = tmp_path / "out"
    assert not out.exists() or not list(out.iterdir())


@pytest.mark.slow
def test_airflow_dag_defaults_and_bad_settings_do_not_hide_the_dag(tmp_path):
    dag = _probe_dag(tmp_path)
    assert dag["schedule"] == "@daily" and dag["catchup"] is False
    assert "CsvExampleGen" in dag["tasks"]
    bad = _probe_dag(tmp_path, ANOMALY_PIPELINE_EPOCHS="many",
                     ANOMALY_PIPELINE_NAME="my-anomalies")
    # tensorflow/tfx#4381: an exception while parsing makes the DAG vanish; here
    # the DAG stays, with one task that fails with the reason.
    assert bad["dag_id"] == "my-anomalies"
    assert list(bad["tasks"]) == ["config_error"]
    assert "ANOMALY_PIPELINE_EPOCHS" in bad["description"]
