"""Airflow DAG for the anomaly pipeline: copy or symlink this file into your DAGs folder.

It builds the same `create_pipeline(cfg, ...)` as `anomaly-pipeline run` and
hands it to TFX's AirflowDagRunner (Airflow 2.x; TFX 1.16 needs Airflow < 3),
one task per component, plus a `check_inputs` task that runs the CLI's input
checks first. The project must be installed in Airflow's Python
(`pip install -e .` or the lock file); the DAG file itself holds no logic.

Settings, in increasing precedence (all optional):
  defaults          data = the bundled data/cardio.csv (label column `label`),
                    output = $AIRFLOW_HOME/anomaly-pipeline, schedule @daily
  ANOMALY_PIPELINE_CONFIG=/path/config.json
                    the JSON of `run --config`, plus an optional "airflow"
                    object: {"schedule": "@hourly", "start_date": "2024-01-01",
                    "catchup": false, "retries": 0, "tags": [...]}
  ANOMALY_PIPELINE_DATA         CSV file, directory of CSVs or of span folders
  ANOMALY_PIPELINE_OUTPUT       pipeline root, metadata, serving_model/
  ANOMALY_PIPELINE_LABEL_COLUMN label column (1 = anomaly)
  ANOMALY_PIPELINE_EPOCHS       training epochs
  ANOMALY_PIPELINE_WINDOW       newest spans Transform/Trainer read (span inputs)
  ANOMALY_PIPELINE_NAME         pipeline name = DAG id (default anomaly-pipeline)
  ANOMALY_PIPELINE_SCHEDULE     cron or preset ("@daily"), "none" for manual only
  ANOMALY_PIPELINE_START_DATE   YYYY-MM-DD (default 2024-01-01; catchup is off)
  ANOMALY_PIPELINE_METADATA_MYSQL  HOST[:PORT]/DB (+ ..._MYSQL_USER/_PASSWORD)

Parsing does no pipeline work: it reads the settings, lists one directory to
detect span folders and builds the DAG. A bad setting does not make the DAG
vanish (tensorflow/tfx#4381): the DAG is still defined, with a single
`config_error` task that fails with the message.
"""
import functools
import json
import logging
import os
from datetime import datetime
from typing import Any, Dict, Mapping, Optional, Tuple

ENV_PREFIX = "ANOMALY_PIPELINE_"
DEFAULT_SCHEDULE = "@daily"
DEFAULT_START_DATE = "2024-01-01"
CHECK_TASK_ID = "check_inputs"
ERROR_TASK_ID = "config_error"

log = logging.getLogger(__name__)


def _project_root() -> str:
    import pipeline

    return os.path.dirname(os.path.dirname(os.path.abspath(pipeline.__file__)))


def _env(environ: Mapping[str, str], name: str) -> Optional[str]:
    value = environ.get(ENV_PREFIX + name)
    return value if value not in (None, "") else None


def load_settings(environ: Mapping[str, str] = os.environ) -> Tuple[Any, Dict[str, Any]]:
    """(PipelineConfig, airflow settings) from the defaults, the JSON file named
    by ANOMALY_PIPELINE_CONFIG and the ANOMALY_PIPELINE_* variables."""
    from pipeline import config as config_lib

    path = _env(environ, "CONFIG")
    file_values = dict(config_lib.load_config_file(path)) if path else {}
    airflow = dict(file_values.pop("airflow", None) or {})
    unknown = set(airflow) - {"schedule", "start_date", "catchup", "retries", "tags"}
    if unknown:
        raise config_lib.ConfigError(f"unknown setting 'airflow.{sorted(unknown)[0]}' (valid: "
                                     f"catchup, retries, schedule, start_date, tags)")
    home = environ.get("AIRFLOW_HOME") or os.path.join(os.path.expanduser("~"), "airflow")
    file_values.setdefault("output", os.path.join(home, "anomaly-pipeline"))
    file_data = dict(file_values.get("data") or {})
    if "path" not in file_data and _env(environ, "DATA") is None:
        # The bundled dataset, so the DAG runs as dropped in.
        file_data = {"path": os.path.join(_project_root(), "data", "cardio.csv"),
                     "label_column": "label", **file_data}
    file_values["data"] = file_data
    env: Dict[str, Any] = {"data": {}}
    for name, key in (("DATA", "path"), ("LABEL_COLUMN", "label_column")):
        if _env(environ, name) is not None:
            env["data"][key] = _env(environ, name)
    for name, section, key in (("EPOCHS", "model", "epochs"), ("WINDOW", "data", "window")):
        if _env(environ, name) is not None:
            try:
                env.setdefault(section, {})[key] = int(_env(environ, name))
            except ValueError:
                raise config_lib.ConfigError(
                    f"{ENV_PREFIX}{name} must be an integer, got '{_env(environ, name)}'"
                ) from None
    for name, key in (("OUTPUT", "output"), ("NAME", "pipeline_name"),
                      ("METADATA_MYSQL", "metadata_mysql")):
        if _env(environ, name) is not None:
            env[key] = _env(environ, name)
    cfg = config_lib.build_config(file_values, env)
    for name, key in (("SCHEDULE", "schedule"), ("START_DATE", "start_date")):
        if _env(environ, name) is not None:
            airflow[key] = _env(environ, name)
    schedule = airflow.get("schedule", DEFAULT_SCHEDULE)
    if isinstance(schedule, str) and schedule.lower() in ("none", "null", ""):
        schedule = None
    try:
        start = datetime.strptime(str(airflow.get("start_date", DEFAULT_START_DATE)), "%Y-%m-%d")
    except ValueError:
        raise config_lib.ConfigError(
            f"airflow start_date must be YYYY-MM-DD, got '{airflow.get('start_date')}'") from None
    dag_args = {"schedule": schedule, "start_date": start,
                "catchup": bool(airflow.get("catchup", False)), "max_active_runs": 1,
                "default_args": {"retries": int(airflow.get("retries", 0))},
                "tags": list(airflow.get("tags", ["tfx", "anomaly-detection"]))}
    return cfg, dag_args


def input_location(cfg) -> Tuple[str, str]:
    """(input_base, pattern) for CsvExampleGen, decided without reading data:
    span pattern (configured, or detected by listing --data), a single CSV,
    or every *.csv in a directory."""
    from pipeline import spans

    data = cfg.data.path
    pattern = cfg.data.span_pattern
    if pattern is None and os.path.isdir(data):
        pattern = spans.detect_pattern(data)
    if pattern is not None:
        return os.path.abspath(data), pattern
    if os.path.isdir(data) or not data.endswith(".csv"):
        return os.path.abspath(data), "*.csv"
    return os.path.dirname(os.path.abspath(data)), os.path.basename(data)


def check_inputs(config_json: str) -> Dict[str, Any]:
    """The `check_inputs` task: the CLI's input checks on the file, or on the
    window of span folders, before CsvExampleGen reads them. Strict: rows with
    missing values fail the task (the CLI quarantines them instead)."""
    from pipeline import config as config_lib
    from pipeline import csv_checks, spans

    cfg = config_lib.from_json(config_json)
    pattern = cfg.data.span_pattern or spans.detect_pattern(cfg.data.path)
    if pattern is not None:
        window = spans.select(spans.list_spans(cfg.data.path, pattern), cfg.data.window)
        paths = [s.path for s in window]
    else:
        if cfg.data.window > 1:
            raise config_lib.ConfigError(
                f"window {cfg.data.window} needs the data to be a directory of span folders")
        paths = [cfg.data.path]
    rows = 0
    for p in paths:
        info = csv_checks.check_csv(p, label_column=cfg.data.label_column, mode="train")
        rows += info.rows
    result = {"rows": rows, "checked": paths}
    log.info("input checks passed: %s", json.dumps(result))
    return result


def _tfx_dag(cfg, dag_args: Dict[str, Any]):
    from airflow.operators.python import PythonOperator
    from tfx.orchestration.airflow.airflow_dag_runner import (AirflowDagRunner,
                                                               AirflowPipelineConfig)

    from pipeline.beam_tuning import tune_in_process_runner
    from pipeline.metadata import connection_config
    from pipeline.pipeline import create_pipeline

    tune_in_process_runner()  # the tasks run in the processes that parse this file
    input_base, pattern = input_location(cfg)
    tfx_pipeline = create_pipeline(
        cfg, input_base, pattern, metadata_connection_config=connection_config(cfg),
        # In-process DirectRunner in each task (fastest here, and with no Beam
        # args TFX skips staging an sdist of itself per task); `beam_args` in
        # the config (--beam-arg style) override, e.g. a PortableRunner.
        beam_pipeline_args=list(cfg.beam_args))
    dag = AirflowDagRunner(AirflowPipelineConfig(airflow_dag_config=dag_args)).run(tfx_pipeline)
    check = PythonOperator(task_id=CHECK_TASK_ID, dag=dag,
                           python_callable=functools.partial(check_inputs, cfg.to_json()))
    for task in dag.tasks:
        if task.task_id != CHECK_TASK_ID and not task.upstream_task_ids:
            check >> task  # every root task (CsvExampleGen, the model resolver) waits
    return dag


def _raise(message: str):
    from pipeline.config import ConfigError

    raise ConfigError(message)


def _error_dag(dag_id: str, message: str):
    from airflow import DAG
    from airflow.operators.python import PythonOperator

    dag = DAG(dag_id=dag_id, schedule=None, start_date=datetime(2024, 1, 1), catchup=False,
              description=f"configuration error: {message}"[:500],
              tags=["tfx", "anomaly-detection", "config-error"])
    PythonOperator(task_id=ERROR_TASK_ID, dag=dag,
                   python_callable=functools.partial(_raise, message))
    return dag


def build_dag(environ: Mapping[str, str] = os.environ):
    """The airflow DAG: the pipeline's, or on a bad setting one that says why."""
    dag_id = _env(environ, "NAME") or "anomaly-pipeline"
    try:
        cfg, dag_args = load_settings(environ)
        return _tfx_dag(cfg, dag_args)
    except Exception as e:  # noqa: BLE001 - a parse-time exception would hide the DAG
        message = f"{type(e).__name__}: {e}".splitlines()[0]
        log.exception("the anomaly-pipeline DAG cannot be built: %s", message)
        return _error_dag(dag_id, message)


DAG = build_dag()
