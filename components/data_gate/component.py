"""DataGate: stops the pipeline before Transform/Trainer when new data is bad.

It checks this run's statistics against the schema (the reference schema of
the first blessed run when there is one, see `reference_schema.py`) and, when the
data of an earlier run was accepted, for drift against that run's training
statistics: Jensen-Shannon divergence for numeric features, L-infinity
distance for the label (thresholds in `settings.DriftSettings`). Any
anomaly or drift raises `errors.DataValidationError`: the execution fails,
nothing downstream runs, nothing is pushed.

Inputs
  statistics           ExampleStatistics of this run (StatisticsGen).
  schema               Schema to validate against.
  anomalies            optional ExampleAnomalies of the stock ExampleValidator
                       (same schema); its findings are reported too.
  baseline_statistics  optional AcceptedStatistics: the training statistics of
                       the last run whose data passed this gate
                       (`accepted_statistics_resolver`). None on the first run:
                       drift is then not measured.
Outputs
  accepted_statistics  AcceptedStatistics: this run's training-split statistics
                       (`FeatureStats.pb`) and the gate's `gate_report.json`;
                       written only when the data passes, so a rejected span
                       never becomes the reference of the next run.
Parameters
  gate_config          JSON: {"columns": ColumnRoles, "drift": DriftSettings}
                       (settings.py; the train split is compared).
"""
from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import artifact, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ExecutionParameter

from components.data_gate import artifacts, executor

STATISTICS_KEY = "statistics"
SCHEMA_KEY = "schema"
ANOMALIES_KEY = "anomalies"
BASELINE_STATISTICS_KEY = "baseline_statistics"
ACCEPTED_STATISTICS_KEY = "accepted_statistics"
CONFIG_KEY = "gate_config"


class AcceptedStatistics(artifact.Artifact):
    """Training statistics of a run whose data passed the DataGate.

    `<uri>/FeatureStats.pb`: a binary DatasetFeatureStatisticsList with one
    dataset (the training split); `<uri>/gate_report.json`: what was checked.
    Custom properties: source_statistics_id, split, label_column, rows.
    """

    TYPE_NAME = artifacts.ACCEPTED_TYPE  # "anomaly_pipeline.AcceptedStatistics"


class DataGateSpec(types.ComponentSpec):
    PARAMETERS = {CONFIG_KEY: ExecutionParameter(type=str)}
    INPUTS = {
        STATISTICS_KEY: ChannelParameter(type=standard_artifacts.ExampleStatistics),
        SCHEMA_KEY: ChannelParameter(type=standard_artifacts.Schema),
        ANOMALIES_KEY: ChannelParameter(type=standard_artifacts.ExampleAnomalies, optional=True),
        BASELINE_STATISTICS_KEY: ChannelParameter(type=AcceptedStatistics, optional=True),
    }
    OUTPUTS = {
        ACCEPTED_STATISTICS_KEY: ChannelParameter(type=AcceptedStatistics),
    }


class DataGate(base_component.BaseComponent):
    SPEC_CLASS = DataGateSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, statistics: types.BaseChannel, schema: types.BaseChannel,
                 anomalies: Optional[types.BaseChannel] = None,
                 baseline_statistics: Optional[types.BaseChannel] = None,
                 gate_config: str = "{}"):
        spec = DataGateSpec(
            statistics=statistics,
            schema=schema,
            anomalies=anomalies,
            baseline_statistics=baseline_statistics,
            gate_config=gate_config,
            accepted_statistics=types.Channel(type=AcceptedStatistics),
        )
        super().__init__(spec=spec)
