"""DataGate: schema anomalies and drift stop a run before training (README.md)."""
