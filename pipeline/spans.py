"""Span inputs: `--data` as a directory of `span-N/` or `YYYY-MM-DD/` folders.

A span is one folder of `*.csv` files (one day, one batch). CsvExampleGen reads
`--data` with a span pattern (`span-{SPAN}/*.csv` or `{YYYY}-{MM}-{DD}/*.csv`,
TFX's own syntax) and ingests the newest span on every run; dated folders get
TFX's span number, days since 1970-01-01. With `--window K`, Transform and the
Trainer read the newest K spans ingested so far (`pipeline/span_window.py`);
pipeline/inputs.py plans which folders a run reads and ingests the window's
older spans ML Metadata has not seen yet.

Pure Python at import time (no TFX): the CLI and the config use it cheaply.
"""
import datetime
import os
import re
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from components.errors import InputError

SPAN_PATTERN = "span-{SPAN}/*.csv"
DATE_PATTERN = "{YYYY}-{MM}-{DD}/*.csv"
_SPAN_SPEC = re.compile(r"\{SPAN(?::(\d+))?\}")
_DATE_SPECS = ("{YYYY}", "{MM}", "{DD}")
_EPOCH = datetime.date(1970, 1, 1)
# What auto-detection recognizes: the two layouts named in the README.
_SPAN_DIR = re.compile(r"^span-(\d+)$")
_DATE_DIR = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def date_to_span(year: int, month: int, day: int) -> int:
    """TFX's span number of a date (tfx.components.example_gen.utils)."""
    return (datetime.date(year, month, day) - _EPOCH).days


def has_span_spec(pattern: Optional[str]) -> bool:
    return bool(pattern) and (bool(_SPAN_SPEC.search(pattern))
                              or any(s in pattern for s in _DATE_SPECS))


def pattern_problem(pattern: str) -> Optional[str]:
    """Why `pattern` is not a usable span pattern, or None.

    A span pattern is `<folder>/*.csv` relative to `--data`, where `<folder>`
    holds `{SPAN}` (optionally `{SPAN:width}`) or each of `{YYYY}`, `{MM}`,
    `{DD}` once (TFX's syntax; `{VERSION}` is not supported).
    """
    parts = pattern.split("/")
    if len(parts) != 2 or parts[1] != "*.csv" or not parts[0]:
        return (f"span pattern '{pattern}' must be '<folder>/*.csv' (one folder level, "
                f"e.g. '{SPAN_PATTERN}' or '{DATE_PATTERN}')")
    folder = parts[0]
    spans = len(_SPAN_SPEC.findall(folder))
    dates = [folder.count(s) for s in _DATE_SPECS]
    if "{VERSION" in folder:
        return f"span pattern '{pattern}': {{VERSION}} is not supported"
    if spans == 1 and not any(dates):
        return None
    if spans == 0 and dates == [1, 1, 1]:
        return None
    return (f"span pattern '{pattern}' must contain {{SPAN}} once, or each of "
            f"{{YYYY}}, {{MM}}, {{DD}} once, in its folder name")


def _folder_regex(folder_template: str) -> "re.Pattern[str]":
    out, pos = [], 0
    token = re.compile(r"\{SPAN(?::(\d+))?\}|\{YYYY\}|\{MM\}|\{DD\}|[*?]")
    for m in token.finditer(folder_template):
        out.append(re.escape(folder_template[pos:m.start()]))
        t = m.group(0)
        if t.startswith("{SPAN"):
            out.append(r"(?P<span>\d{%s})" % m.group(1) if m.group(1) else r"(?P<span>\d+)")
        elif t == "{YYYY}":
            out.append(r"(?P<y>\d{4})")
        elif t in ("{MM}", "{DD}"):
            out.append(r"(?P<%s>\d{2})" % t[1].lower())
        else:
            out.append(".*" if t == "*" else ".")
        pos = m.end()
    out.append(re.escape(folder_template[pos:]))
    return re.compile("^" + "".join(out) + "$")


def _folder_glob(folder_template: str) -> "re.Pattern[str]":
    """What TFX's glob for the folder matches (specs become `*`)."""
    g = _SPAN_SPEC.sub("*", folder_template)
    for s in _DATE_SPECS:
        g = g.replace(s, "*")
    return re.compile("^" + ".*".join(re.escape(p) for p in g.split("*")) + "$")


@dataclass(frozen=True)
class Span:
    number: int
    name: str   # the folder name, e.g. "span-3" or "2024-05-01"
    path: str   # the folder


def detect_pattern(path: str) -> Optional[str]:
    """`span-{SPAN}/*.csv` or `{YYYY}-{MM}-{DD}/*.csv` when the local directory
    `path` holds span folders, else None (a CSV file or a directory of CSVs).

    Raises InputError when both layouts are present.
    """
    if not os.path.isdir(path):
        return None
    dirs = [n for n in os.listdir(path) if os.path.isdir(os.path.join(path, n))]
    has_span = any(_SPAN_DIR.match(n) for n in dirs)
    has_date = any(_DATE_DIR.match(n) for n in dirs)
    if has_span and has_date:
        raise InputError(path, problem="holds both span-N/ and YYYY-MM-DD/ folders; use one "
                                       "layout (or choose one with --span-pattern)")
    if (has_span or has_date) and any(
            n.endswith(".csv") and os.path.isfile(os.path.join(path, n))
            for n in os.listdir(path)):
        raise InputError(path, problem="holds both *.csv files and span folders; move the "
                                       "files into a span folder (or pass --span-pattern)")
    if has_span:
        return SPAN_PATTERN
    if has_date:
        return DATE_PATTERN
    return None


def list_spans(path: str, pattern: str) -> List[Span]:
    """The span folders of the local directory `path` for `pattern`, oldest
    first. Raises InputError for a folder TFX's glob would match but whose name
    is not a span (TFX would fail on it mid-run), for two folders with the same
    span number, and when there is no span folder."""
    folder = pattern.split("/")[0]
    regex, glob = _folder_regex(folder), _folder_glob(folder)
    spans: List[Span] = []
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if not glob.match(name):
            continue
        m = regex.match(name)
        if not m:
            if os.path.isdir(full):
                raise InputError(full, problem=f"folder name does not match the span "
                                               f"pattern '{pattern}'")
            continue
        if not os.path.isdir(full):
            continue
        if "span" in m.groupdict() and m.group("span") is not None:
            number = int(m.group("span"))
        else:
            try:
                number = date_to_span(int(m.group("y")), int(m.group("m")), int(m.group("d")))
            except ValueError:
                raise InputError(full, problem="folder name is not a valid date") from None
        spans.append(Span(number, name, full))
    if not spans:
        raise InputError(path, problem=f"no span folders matching '{pattern}'")
    spans.sort(key=lambda s: s.number)
    for a, b in zip(spans, spans[1:]):
        if a.number == b.number:
            raise InputError(b.path, problem=f"same span number {a.number} as "
                                             f"{os.path.basename(a.path)}/")
    return spans


def select(spans: Sequence[Span], window: int) -> List[Span]:
    """The newest `window` spans, oldest first."""
    return list(spans[-max(1, window):])


def mirror_for_quarantine(spans: Sequence[Span], pattern: str, root: str
                          ) -> Tuple[str, str]:
    """(input_base, pattern) of a mirror of `spans` under `root` where each span
    folder is `<root>/<span>/clean/*.csv`. `input_checks.check_csv(span.path,
    quarantine_dir=<root>/<span>)` wrote the clean copies of spans that had rows
    set aside; the others are copied here (mtime kept, so ExampleGen's input
    fingerprint, and with it the cache, stays stable)."""
    import shutil

    os.makedirs(root, exist_ok=True)
    keep = {s.name for s in spans}
    for name in os.listdir(root):  # spans outside the window: stale
        if name not in keep and os.path.isdir(os.path.join(root, name)):
            shutil.rmtree(os.path.join(root, name))
    for s in spans:
        clean = os.path.join(root, s.name, "clean")
        if os.path.isdir(clean) and os.listdir(clean):
            continue  # check_csv wrote it
        os.makedirs(clean, exist_ok=True)
        for n in sorted(os.listdir(s.path)):
            if n.endswith(".csv") and os.path.isfile(os.path.join(s.path, n)):
                shutil.copy2(os.path.join(s.path, n), os.path.join(clean, n))
    folder = pattern.split("/")[0]
    return root, f"{folder}/clean/*.csv"
