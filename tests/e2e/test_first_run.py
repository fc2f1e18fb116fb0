"""A first run as a new user sees it: on a terminal, in its log, its report, TensorBoard.

The CLI runs on a pseudo-terminal (stdout and stderr a real TTY, as `make run`
in a terminal), on small data with a few rows that have empty cells, run with
`--missing quarantine` (the setting that sets them aside instead of imputing). What is left on the screen must be a few lines: one per
component with its time, the Trainer's outcome, the pushed model, the JSON
summary last. Everything else (TFX, absl, Beam, TensorFlow) is in the log
file the summary names, and a first run -- no baseline, no accepted
statistics yet -- has no traceback or ERROR anywhere. A second run with
stderr a pipe (a log, Airflow, CI) prints plain lines, the epochs included.
"""
import json
import os
import re
import sys

import numpy as np
import pytest

from tests.helpers import cli_subprocess, make_data
from tests.helpers.tensorboard import scalars, tensorboard
from tests.helpers.terminal import run_on_pty, screen_lines

pytestmark = pytest.mark.e2e

QUARANTINED = 3
FIRST_EPOCHS, SECOND_EPOCHS = 3, 4
NODES = ["CsvExampleGen", "accepted_statistics_resolver", "latest_blessed_model_resolver",
         "StatisticsGen", "SchemaGen", "ExampleValidator", "DataGate", "Transform", "Trainer",
         "AnomalyEvaluator", "Pusher"]


def _env():
    env = {k: v for k, v in os.environ.items() if k != "ANOMALY_PIPELINE_PROGRESS"}
    env["TERM"] = "xterm-256color"
    return env


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    root = tmp_path_factory.mktemp("first_run")
    df = make_data()
    df.loc[df.index[:QUARANTINED], "x2"] = np.nan  # empty cells: set aside (--missing quarantine)
    data = root / "train.csv"
    df.to_csv(data, index=False)
    out = root / "out"
    argv = [sys.executable, "-m", "pipeline.cli", "run", "--data", str(data),
            "--label-column", "label", "--output", str(out), "--epochs", str(FIRST_EPOCHS),
            "--batch-size", "32", "--missing", "quarantine"]
    code, raw = run_on_pty(argv, env=_env())
    lines = screen_lines(raw)
    assert code == 0, "\n".join(lines[-40:])
    summary = json.loads(lines[-1])
    return {"root": root, "data": data, "out": out, "raw": raw, "lines": lines,
            "summary": summary, "log": open(summary["log"], encoding="utf-8").read()}


def test_the_terminal_shows_a_few_lines_of_progress_and_the_json_last(first):
    lines, s = first["lines"], first["summary"]
    assert len(lines) <= 40, "\n".join(lines)
    assert lines[0] == (f"{first['data']}: 620 rows checked, {QUARANTINED} rows set aside in "
                        f"{first['out'] / 'quarantine' / 'quarantined.csv'}")
    assert lines[1].startswith("columns: 8 numeric (x0, ")
    assert lines[2] == f"full log: {s['log']}"
    done = [line for line in lines if re.match(r"\[\s*\d+/11\] ", line)]
    names = [re.match(r"\[\s*\d+/11\] (\S+)", line).group(1) for line in done]
    assert names == NODES, done  # one line per node, in order
    for line in done:
        assert re.search(r" (done|resolved|nothing to resolve yet) \d+\.\d s$", line), line
    assert "[ 2/11] accepted_statistics_resolver nothing to resolve yet" in lines[
        lines.index(done[1])]
    # The Trainer's fit: its kept line (the epochs were the live bar).
    (fit,) = [line for line in lines if line.startswith("  training: ")]
    assert f"{s['epochs_run']}/{FIRST_EPOCHS} epochs" in fit
    assert f"pushed model: {s['pushed_model']} (registry anomaly_detector version 1, " \
           f"champion)" in lines
    assert f"report: {s['report']}" in lines


def test_the_epochs_were_shown_live_on_the_terminal(first):
    text = first["raw"].decode("utf-8", "replace")
    # The bar's text: at least the first epoch is drawn (4 refreshes a second).
    assert re.search(rf"epoch \d/{FIRST_EPOCHS} loss \d+\.\d{{4}} val \d+\.\d{{4}}", text)


def test_a_first_run_has_no_traceback_or_error_anywhere(first):
    text = first["raw"].decode("utf-8", "replace")
    for where, what in (("terminal", text), ("log", first["log"])):
        assert "Traceback" not in what, where
        assert not re.search(r"\bERROR\b", what), (where, re.findall(r".*\bERROR\b.*", what))


def test_the_log_holds_what_tfx_and_tensorflow_said(first):
    log, s = first["log"], first["summary"]
    assert s["log"].startswith(str(first["out"] / "logs")) and s["log"].endswith(".log")
    for name in NODES:
        assert f"Component {name} is running." in log, name
    assert "[accepted_statistics_resolver] nothing to resolve yet" in log
    assert " INFO absl " in log and "anomaly_pipeline.progress" in log
    assert re.search(r"training epoch 1/3 loss", log)  # the progress lines too
    assert len(log.splitlines()) > 1000


def test_the_published_report_says_what_happened_in_this_run(first):
    s = first["summary"]
    assert s["quarantined_rows"] == QUARANTINED
    (qfile,) = s["quarantine_files"]
    assert qfile == str(first["out"] / "quarantine" / "quarantined.csv")
    text = open(s["report"], encoding="utf-8").read()
    m = re.search(r"<section id='this-run'>(.*?)</section>", text, re.S)
    assert m and text.index("id='this-run'") < text.index("id='summary'")
    sec = m.group(1)
    version = os.path.basename(s["pushed_model"])
    assert f"<b>{version}</b>" in sec and s["pushed_model"] in sec
    assert f"<span class='bad'>{QUARANTINED}</span> rows" in sec
    assert "href='quarantine/quarantined.csv'" in sec
    assert "<section id='selection'><h2>Model selection</h2>" in text
    capped = s["best_epoch"] == FIRST_EPOCHS
    assert ("epoch cap (model.epochs=3)" in text) == capped
    assert any("epoch cap" in w for w in s["warnings"]) == capped


def test_the_readme_tensorboard_command_serves_the_trainer_scalars(first):
    run_dir = first["summary"]["tensorboard_logdir"]
    logdir = os.path.dirname(run_dir)  # runs/pipeline_root/Trainer/model_run, as the README
    assert logdir == str(first["out"] / "pipeline_root" / "Trainer" / "model_run")
    run = os.path.basename(run_dir)
    with tensorboard(logdir) as base:
        got = scalars(base, [f"{run}/train", f"{run}/validation"])
    for points in got.values():
        assert [step for _, step, _ in points] == list(range(first["summary"]["epochs_run"]))
        assert all(np.isfinite(v) and v > 0 for _, _, v in points)


def test_a_second_run_into_a_pipe_prints_plain_lines_with_the_epochs(first):
    proc = cli_subprocess("run", "--data", first["data"], "--label-column", "label",
                          "--output", first["out"], "--epochs", str(SECOND_EPOCHS),
                          "--batch-size", "32", "--missing", "quarantine", env=_env())
    lines = proc.stderr.splitlines()
    assert len(proc.stdout.splitlines()) == 1 and json.loads(proc.stdout)["blessed"] is not None
    assert "\r" not in proc.stderr and "\x1b[" not in proc.stderr  # no bar drawing in a log
    assert len(lines) <= 45, proc.stderr
    # After the first push a 12th node validates against the reference schema.
    starts = [line for line in lines if re.match(r"\[\s*\d+/12\] \S+ \.\.\.$", line)]
    ends = [line for line in lines if re.match(r"\[\s*\d+/12\] \S+ \D+ \d+\.\d s$", line)]
    assert len(starts) == len(ends) == 12, lines
    assert starts[0] == "[ 1/12] CsvExampleGen ..."
    assert any("reference_schema" in line for line in ends)
    # As plain lines, about every fifth of the epochs: here all four.
    epochs = [line for line in lines if re.match(r"  training epoch \d/4 loss ", line)]
    assert [line.split()[2] for line in epochs] == ["1/4", "2/4", "3/4", "4/4"], lines
    assert all(re.search(r"loss \d+\.\d{4} val \d+\.\d{4}$", line) for line in epochs)
    assert "Traceback" not in proc.stderr and not re.search(r"\bERROR\b", proc.stderr)
