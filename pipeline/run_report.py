"""The "This run" section of the published <output>/report.html.

The AnomalyEvaluator writes report.html before the Pusher runs, and on a
re-run with unchanged inputs its report is a cached artifact of an earlier
run. What only the end of a run knows -- the version pushed and where it went,
the registry version, the rows the input checks set aside and where they are,
the warnings, the log file -- is added to the copy `run` publishes
(pipeline/summary.py `publish_report`) as the first section. A failure here
is logged and never fails the run.
"""
import html
import logging
import os
import re
from typing import Any, Dict, List, Mapping, Optional

SECTION_ID = "this-run"
_SECTION = re.compile(r"<section id='%s'>.*?</section>\n?" % SECTION_ID, re.S)
STYLE = ("<style>.run-warning{background:#fff4e5;border-left:4px solid #e69500;"
         "padding:6px 10px;margin:6px 0}</style>")


def _e(x: Any) -> str:
    return html.escape(str(x))


def _path(path: str, report_dir: str) -> str:
    """A path as code, linked relative to the report when it lies under its directory."""
    text = f"<code>{_e(path)}</code>"
    try:
        rel = os.path.relpath(path, report_dir)
    except ValueError:
        return text
    if rel.startswith(".."):
        return text
    return f"<a href='{_e(rel)}'>{text}</a>"


def section(summary: Mapping[str, Any], data_path: str, report_dir: str) -> str:
    """The section's HTML from the run summary."""
    rows: List[List[str]] = []
    pushed = summary.get("pushed_model")
    if pushed:
        rows.append(["pushed version", f"<b>{_e(os.path.basename(pushed))}</b> to "
                                       + _path(pushed, report_dir)])
    else:
        rows.append(["pushed version", "<span class='bad'>nothing pushed</span>: "
                     + _e("; ".join(summary.get("reasons") or []))])
    reg = summary.get("registry") or {}
    if reg.get("version"):
        champion = " (alias <code>champion</code>)" if reg.get("champion") == reg["version"] \
            else ""
        rows.append(["registry", f"<code>{_e(reg.get('name'))}</code> version "
                                 f"{_e(reg['version'])}{champion} in <code>{_e(reg.get('uri'))}"
                                 f"</code>"])
    elif reg.get("error"):
        rows.append(["registry", f"<span class='bad'>handoff failed</span>: {_e(reg['error'])}"])
    quarantined = int(summary.get("quarantined_rows") or 0)
    data_rows = summary.get("data_rows")
    rows.append(["input", f"<code>{_e(data_path)}</code>: "
                 + (f"{data_rows:,} rows" if isinstance(data_rows, int) else "rows unknown")])
    if quarantined:
        files = summary.get("quarantine_files") or []
        rows.append(["quarantined rows",
                     f"<span class='bad'>{quarantined:,}</span> rows with non-finite (or, "
                     f"with --missing quarantine, missing) values were set aside, not trained "
                     f"or evaluated on"
                     + (": " + ", ".join(_path(f, report_dir) for f in files) if files else "")])
    else:
        rows.append(["quarantined rows", "0 (no row was set aside)"])
    empty = (summary.get("input") or {}).get("empty_cells") or {}
    if empty:
        rows.append(["empty cells", "imputed with the training mean, with a missing-indicator "
                     "input: " + ", ".join(f"{_e(c)} {n:,}" for c, n in empty.items())])
    cols = summary.get("columns") or {}
    if cols:
        rows.append(["columns", "; ".join(
            f"{role}: {_e(', '.join(cols.get(role) or [])) or 'none'}"
            for role in ("numeric", "categorical", "passthrough"))
            + " (why: the summary's <code>columns.why</code>)"])
    comps = summary.get("components") or {}
    rows.append(["components", f"ran: {_e(', '.join(comps.get('ran') or []) or 'none')}; "
                               f"cached: {_e(', '.join(comps.get('cached') or []) or 'none')}"])
    rows.append(["run", f"<code>{_e(summary.get('run_id'))}</code>, "
                        f"{_e(summary.get('seconds'))} s"])
    if summary.get("log"):
        rows.append(["log", _path(summary["log"], report_dir)])
    body = "".join(f"<tr><td>{k}</td><td style='text-align:left'>{v}</td></tr>"
                   for k, v in rows)
    parts = [f"<section id='{SECTION_ID}'><h2>This run</h2>",
             f"<table><tr><th></th><th style='text-align:left'>value</th></tr>{body}</table>"]
    for text in summary.get("warnings") or []:
        parts.append(f"<p class='run-warning'><b>Warning:</b> {_e(text)}</p>")
    if "AnomalyEvaluator" in (comps.get("cached") or []):
        parts.append("<p class='muted'>The inputs were unchanged: the sections below are the "
                     "cached evaluation of an earlier run.</p>")
    parts.append("</section>\n")
    return "\n".join(parts)


def remove(text: str) -> str:
    """`text` without the This-run section and its style: the evaluator's report again."""
    return _SECTION.sub("", text).replace(STYLE, "")


def insert(text: str, section_html: str) -> str:
    """`text` with its This-run section replaced by (or else put before the first section
    as) `section_html`."""
    text = remove(text).replace("</head>", STYLE + "</head>", 1)
    at = text.find("<section")
    if at < 0:
        at = text.rfind("</body>")
    if at < 0:
        return text + section_html
    return text[:at] + section_html + text[at:]


def add_run_section(report_path: Optional[str], summary: Dict[str, Any],
                    data_path: str) -> bool:
    """Adds the section to the published report in place; False (logged) if it could not."""
    if not report_path or "://" in report_path or not os.path.isfile(report_path):
        return False
    try:
        with open(report_path, encoding="utf-8") as f:
            text = f.read()
        out = insert(text, section(summary, data_path,
                                   os.path.dirname(os.path.abspath(report_path))))
        tmp = f"{report_path}.tmp-{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(out)
        os.replace(tmp, report_path)
        return True
    except Exception:  # noqa: BLE001 - the report is informative; the run succeeded
        logging.warning("could not add the run's section to %s", report_path, exc_info=True)
        return False
