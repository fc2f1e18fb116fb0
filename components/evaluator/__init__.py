"""AnomalyEvaluator: threshold, metrics and blessing of reconstruction-error models (README.md)."""
