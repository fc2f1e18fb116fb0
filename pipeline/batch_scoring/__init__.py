"""`anomaly-pipeline score`: flag the rows of a CSV with a pushed model, as a Beam pipeline.

    check the CSV (components/input_checks, against the model's feature list)
    plan chunks: byte ranges of ~`rows_per_chunk` whole lines (chunks.py)
    score them with RunInference and write the output CSV (beam_job.py)
    one JSON line on stdout (pipeline/cli/score.py)

score.py holds `score_csv`, the entry point; settings.py its defaults.

The model is a directory, a serving_model/<name> directory or a registry URI
(model_source.py). The same command runs on any Beam runner
(`--beam-arg=--runner=...`); the input, output and model paths must then be
readable by the workers, and the workers need this package installed.
"""
