"""The DataGate's artifact: names and files of AcceptedStatistics (no TFX import).

`<uri>/FeatureStats.pb`: a binary DatasetFeatureStatisticsList with one
dataset (the training split); `<uri>/gate_report.json`: what was checked.
Custom properties: source_statistics_id, split, label_column, rows[, max_drift].
"""
import os

from tensorflow_metadata.proto.v0 import statistics_pb2

# The MLMD type name of AcceptedStatistics: the KFP v2 compiler of TFX 1.16
# only accepts custom types named "<namespace>.<Name>".
ACCEPTED_TYPE = "anomaly_pipeline.AcceptedStatistics"
STATS_FILE = "FeatureStats.pb"
REPORT_FILE = "gate_report.json"
NODE_ID = "DataGate"
OUTPUT_KEY = "accepted_statistics"


def load_accepted_statistics(uri: str) -> statistics_pb2.DatasetFeatureStatisticsList:
    import tensorflow as tf  # gfile: the artifact may live on a remote filesystem

    stats = statistics_pb2.DatasetFeatureStatisticsList()
    with tf.io.gfile.GFile(os.path.join(uri, STATS_FILE), "rb") as f:
        stats.ParseFromString(f.read())
    return stats
