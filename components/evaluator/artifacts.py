"""What the AnomalyEvaluator writes into its `evaluation` artifact (names only, no TFX)."""

NODE_ID = "AnomalyEvaluator"
EVALUATION_FILE = "evaluation.json"       # blessing, reasons, threshold, metrics, baseline
ERROR_SUMMARY_FILE = "error_summary.pkl"  # the Beam pass's per-model error summaries
REPORT_FILE = "report.html"               # components/evaluator/report.py
ERRORS_FILE = "errors.npz"                # error samples per class, for the report
# The scalar metrics of evaluation.json's "metrics" that the summary and the
# registry carry.
SCALAR_METRICS = ("precision", "recall", "f1", "roc_auc", "pr_auc", "accuracy",
                  "false_alarm_rate", "flagged_rate", "eval_rows", "n_anomalies")
