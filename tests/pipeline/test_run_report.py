"""pipeline/run_report.py: the published report gets the run's own facts as its first section."""
import re

from pipeline import run_report

REPORT = ("<!DOCTYPE html><html><head><title>t</title><style></style></head><body>"
          "<h1>Anomaly model evaluation</h1><div class='muted'>candidate model x</div>"
          "<section id='summary'><h2>Summary</h2></section></body></html>")


def _summary(out, **kw):
    s = {"pushed_model": f"{out}/serving_model/anomaly_detector/1796164222",
         "registry": {"name": "anomaly_detector", "version": "3", "champion": "3",
                      "uri": f"sqlite:///{out}/mlflow.db"},
         "quarantined_rows": 12, "quarantine_files": [f"{out}/quarantine/quarantined.csv"],
         "data_rows": 1831, "components": {"ran": ["Trainer"], "cached": ["CsvExampleGen"]},
         "run_id": "2026-12-01T22:29:30", "seconds": 63.0, "log": f"{out}/logs/x.log",
         "warnings": ["training stopped at the epoch cap <50>"], "reasons": []}
    s.update(kw)
    return s


def _this_run(text):
    m = re.search(r"<section id='this-run'>(.*?)</section>", text, re.S)
    assert m, text
    return m.group(1)


def test_the_section_comes_first_with_version_registry_quarantine_warnings_and_log(tmp_path):
    path = tmp_path / "report.html"
    path.write_text(REPORT)
    assert run_report.add_run_section(str(path), _summary(tmp_path), "data/<cardio>.csv")
    text = path.read_text()
    assert text.index("id='this-run'") < text.index("id='summary'")
    sec = _this_run(text)
    assert "<b>1796164222</b>" in sec
    assert "href='serving_model/anomaly_detector/1796164222'" in sec
    assert "version 3 (alias <code>champion</code>)" in sec
    assert "<span class='bad'>12</span> rows" in sec
    assert "href='quarantine/quarantined.csv'" in sec
    assert "1,831 rows" in sec and "data/&lt;cardio&gt;.csv" in sec
    assert "epoch cap &lt;50&gt;" in sec and "href='logs/x.log'" in sec
    assert "cached evaluation" not in sec


def test_adding_it_twice_keeps_one_section(tmp_path):
    path = tmp_path / "report.html"
    path.write_text(REPORT)
    run_report.add_run_section(str(path), _summary(tmp_path), "d.csv")
    run_report.add_run_section(str(path), _summary(tmp_path, quarantined_rows=0,
                                                   quarantine_files=[]), "d.csv")
    text = path.read_text()
    assert text.count("id='this-run'") == 1 and text.count(run_report.STYLE) == 1
    assert run_report.remove(text) == REPORT
    assert "0 (no row was set aside)" in _this_run(text)


def test_nothing_pushed_and_a_cached_evaluation_are_said(tmp_path):
    path = tmp_path / "report.html"
    path.write_text(REPORT)
    run_report.add_run_section(str(path), _summary(
        tmp_path, pushed_model=None, registry=None, reasons=["ROC-AUC 0.80 < 0.90"],
        components={"ran": [], "cached": ["AnomalyEvaluator"]}), "d.csv")
    sec = _this_run(path.read_text())
    assert "nothing pushed" in sec and "ROC-AUC 0.80 &lt; 0.90" in sec
    assert "cached evaluation of an earlier run" in sec


def test_it_never_fails_the_run(tmp_path):
    assert run_report.add_run_section(None, {}, "d.csv") is False
    assert run_report.add_run_section(str(tmp_path / "missing.html"), {}, "d.csv") is False
    path = tmp_path / "report.html"
    path.write_text(REPORT)
    assert run_report.add_run_section(str(path), {"data_rows": object()}, "d.csv") in (True,
                                                                                       False)
    assert run_report.add_run_section(str(path), {"components": 5}, "d.csv") is False
    assert "id='summary'" in path.read_text()
