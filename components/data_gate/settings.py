"""The `drift` settings section of the DataGate (and of `anomaly-pipeline drift`)."""
from dataclasses import dataclass
from typing import List

# The split whose statistics are compared with the accepted ones.
COMPARED_SPLIT = "train"


@dataclass(frozen=True)
class DriftSettings:
    """A span is compared with the training statistics of the last run whose
    data was accepted: Jensen-Shannon divergence (bits, 0..1) per numeric
    feature on the reference's deciles, L-infinity distance between the
    label's class shares and between each categorical column's value shares
    (passthrough columns -- ids, timestamps -- are not compared). Above a threshold the run stops before
    Transform/Trainer (exit 2) and `drift` exits 3. The defaults let a resample
    pass and stop a one-feature shift of ~0.7 sd (docs/data-gate.md).
    `enabled=False` skips the drift comparison (schema anomalies still stop the run).
    """

    enabled: bool = True
    js_threshold: float = 0.1
    linf_threshold: float = 0.1
    # With empty numeric cells imputed (columns.missing "impute"): a column
    # with no empty cells in the reference data may have at most this share of
    # empty cells in a new span before the gate stops it.
    max_missing_share: float = 0.2

    def problems(self) -> List[str]:
        checks = [
            (0 < self.js_threshold <= 1, "drift.js_threshold must be in (0, 1]"),
            (0 < self.linf_threshold <= 1, "drift.linf_threshold must be in (0, 1]"),
            (isinstance(self.enabled, bool), "drift.enabled must be true or false"),
            (0 <= self.max_missing_share <= 1, "drift.max_missing_share must be in [0, 1]"),
        ]
        return [message for ok, message in checks if not ok]
