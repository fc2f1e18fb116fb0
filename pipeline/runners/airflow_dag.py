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
                    the JSON of `run --config`; its "airflow" section is
                    {"schedule": "@hourly", "start_date": "2024-01-01",
                    "catchup": false, "retries": 0, "tags": [...]}
                    (pipeline/config.py AirflowSettings)
  ANOMALY_PIPELINE_DATA         CSV file, directory of CSVs or of span folders
  ANOMALY_PIPELINE_OUTPUT       pipeline root, metadata, serving_model/
  ANOMALY_PIPELINE_LABEL_COLUMN label column (1 = anomaly)
  ANOMALY_PIPELINE_EPOCHS       training epochs
  ANOMALY_PIPELINE_WINDOW       newest spans Transform/Trainer read (span inputs)
  ANOMALY_PIPELINE_NAME         pipeline name = DAG id (default anomaly-pipeline)
  ANOMALY_PIPELINE_SCHEDULE     cron or preset ("@daily"), "none" for manual only
  ANOMALY_PIPELINE_START_DATE   YYYY-MM-DD (default 2024-01-01; catchup is off)
  ANOMALY_PIPELINE_METADATA_MYSQL  HOST[:PORT]/DB (+ ..._MYSQL_USER/_PASSWORD)
  ANOMALY_PIPELINE_LOCK_WAIT    seconds the Pusher waits for another run holding the
                                output (default 1800), then fails naming it

One writer per output: DAG runs never overlap (max_active_runs=1), and the
Pusher task publishes and records the model holding the output's lock
(components/output_lock.py), the same lock `anomaly-pipeline run` holds for a
whole run; so a CLI run and this DAG on one output never push at once.

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
# (variable after the prefix, config field, type): the variables a deployment sets.
ENV_SETTINGS = (
    ("DATA", "data.path", str), ("LABEL_COLUMN", "data.label_column", str),
    ("EPOCHS", "model.epochs", int), ("WINDOW", "data.window", int),
    ("OUTPUT", "output", str), ("NAME", "pipeline_name", str),
    ("METADATA_MYSQL", "metadata_mysql", str), ("LOCK_WAIT", "lock_wait", float),
    ("SCHEDULE", "airflow.schedule", str), ("START_DATE", "airflow.start_date", str),
)
# The Pusher task waits this long for another run holding the output (a CLI run on
# the same --output): then it fails naming the holder, and Airflow's retries apply.
AIRFLOW_LOCK_WAIT = 1800.0
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
    """(PipelineConfig, the DAG's arguments) from the defaults, the JSON file named
    by ANOMALY_PIPELINE_CONFIG and the ANOMALY_PIPELINE_* variables (merged by
    `config.build_config`, the variables last, as flags are for the CLI)."""
    from pipeline import config as config_lib

    path = _env(environ, "CONFIG")
    file_values = dict(config_lib.load_config_file(path)) if path else {}
    home = environ.get("AIRFLOW_HOME") or os.path.join(os.path.expanduser("~"), "airflow")
    file_values.setdefault("output", os.path.join(home, "anomaly-pipeline"))
    file_values.setdefault("lock_wait", AIRFLOW_LOCK_WAIT)
    file_data = dict(file_values.get("data") or {})
    if "path" not in file_data and _env(environ, "DATA") is None:
        # The bundled dataset, so the DAG runs as dropped in.
        file_data = {"path": os.path.join(_project_root(), "data", "cardio.csv"),
                     "label_column": "label", **file_data}
    file_values["data"] = file_data
    env: Dict[str, Any] = {}
    for name, setting, kind in ENV_SETTINGS:
        raw = _env(environ, name)
        if raw is None:
            continue
        if kind in (int, float):
            try:
                raw = kind(raw)
            except ValueError:
                raise config_lib.ConfigError(
                    f"{ENV_PREFIX}{name} must be {'an integer' if kind is int else 'a number'}"
                    f", got '{raw}'") from None
        elif name == "SCHEDULE" and raw.lower() in ("none", "null"):
            raw = None
        section, _, key = setting.rpartition(".")
        (env.setdefault(section, {}) if section else env)[key] = raw
    cfg = config_lib.build_config(file_values, env)
    a = cfg.airflow
    schedule = a.schedule
    if isinstance(schedule, str) and schedule.lower() in ("none", "null", ""):
        schedule = None
    dag_args = {"schedule": schedule,
                "start_date": datetime.strptime(a.start_date, "%Y-%m-%d"),
                "catchup": bool(a.catchup), "max_active_runs": 1,
                "default_args": {"retries": int(a.retries)}, "tags": list(a.tags)}
    return cfg, dag_args


def check_inputs(config_json: str) -> Dict[str, Any]:
    """The `check_inputs` task: the CLI's input checks on the file, or on the
    window of span folders, before CsvExampleGen reads them (pipeline/inputs.py).
    Strict: rows with missing values fail the task (the CLI quarantines them)."""
    from pipeline import config as config_lib
    from pipeline import inputs

    plan = inputs.plan(config_lib.from_json(config_json), quarantine=False)
    result = {"rows": plan.rows, "checked": list(plan.checked)}
    log.info("input checks passed: %s", json.dumps(result))
    return result


def _tfx_dag(cfg, dag_args: Dict[str, Any]):
    from airflow.operators.python import PythonOperator
    from tfx.orchestration.airflow.airflow_dag_runner import (AirflowDagRunner,
                                                               AirflowPipelineConfig)

    from pipeline import inputs
    from pipeline.dag import create_pipeline
    from pipeline.metadata import connection_config
    from pipeline.runners.in_process import tune_in_process_runner

    tune_in_process_runner()  # the tasks run in the processes that parse this file
    # The roles and the delimiter from a sample of the data's first rows (no full check:
    # that is the `check_inputs` task's).
    tfx_pipeline = create_pipeline(
        cfg, inputs.plan_without_checks(cfg), metadata_connection_config=connection_config(cfg),
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
