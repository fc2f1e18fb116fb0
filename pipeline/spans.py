"""Span inputs: `--data` as a directory of `span-N/` or `YYYY-MM-DD/` folders.

A span is one folder of `*.csv` files (one day, one batch). CsvExampleGen reads
`--data` with a span pattern (`span-{SPAN}/*.csv` or `{YYYY}-{MM}-{DD}/*.csv`,
TFX's own syntax) and ingests the newest span on every run; dated folders get
TFX's span number, days since 1970-01-01. With `--window K`, Transform and the
Trainer read the newest K spans ingested so far (`pipeline/span_window.py`);
`anomaly-pipeline run` first ingests any of the K newest span folders that ML
Metadata has not seen yet (`backfill`), so the first run over an existing
directory already trains on K spans.

Pure Python at import time (no TFX): the CLI and the config use it cheaply.
"""
import datetime
import os
import re
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

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
    from pipeline.csv_checks import InputError

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
    from pipeline.csv_checks import InputError

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


def span_dir(input_base: str, pattern: str, number: int) -> str:
    """The folder of span `number` under `input_base` (inverse of list_spans)."""
    folder = pattern.split("/")[0]

    def width(m):
        return str(number).zfill(int(m.group(1))) if m.group(1) else str(number)

    folder = _SPAN_SPEC.sub(width, folder)
    if any(s in folder for s in _DATE_SPECS):
        d = _EPOCH + datetime.timedelta(days=number)
        folder = (folder.replace("{YYYY}", f"{d.year:04d}").replace("{MM}", f"{d.month:02d}")
                  .replace("{DD}", f"{d.day:02d}"))
    return os.path.join(input_base, folder)


def mirror_for_quarantine(spans: Sequence[Span], pattern: str, root: str
                          ) -> Tuple[str, str]:
    """(input_base, pattern) of a mirror of `spans` under `root` where each span
    folder is `<root>/<span>/clean/*.csv`. `csv_checks.check_csv(span.path,
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


# --------------------------------------------------------------------------- MLMD


def ingested_spans(connection_config, pipeline_name: str,
                   node_id: str = "CsvExampleGen") -> List[int]:
    """Span numbers of the Examples artifacts `node_id` of `pipeline_name` has
    recorded in ML Metadata (any run), ascending."""
    from ml_metadata.metadata_store import metadata_store

    store = metadata_store.MetadataStore(connection_config)
    ctx = store.get_context_by_type_and_name("node", f"{pipeline_name}.{node_id}")
    if ctx is None:
        return []
    out = set()
    for a in store.get_artifacts_by_context(ctx.id):
        if a.state != a.LIVE or "span" not in a.custom_properties:
            continue
        v = a.custom_properties["span"]
        out.add(int(v.int_value if v.WhichOneof("value") == "int_value" else v.string_value))
    return sorted(out)


def trained_spans(rec) -> Optional[List[int]]:
    """Spans of the Examples the Trainer of `rec` (a results.RunRecord) read,
    ascending; None when that run had no Trainer execution."""
    from ml_metadata.proto import metadata_store_pb2

    e = rec.executions.get("Trainer")
    if e is None:
        return None
    ids = [ev.artifact_id for ev in rec.store.get_events_by_execution_ids([e.id])
           if ev.type == metadata_store_pb2.Event.INPUT and ev.path.steps
           and ev.path.steps[0].key == "examples"]
    out = []
    for a in rec.store.get_artifacts_by_id(ids):
        if "span" in a.custom_properties:
            v = a.custom_properties["span"]
            out.append(int(v.int_value if v.WhichOneof("value") == "int_value"
                           else v.string_value))
    return sorted(out)


# --------------------------------------------------------------------------- the run's input


@dataclass(frozen=True)
class SpanPlan:
    """What a run over span folders reads: CsvExampleGen's `input_base` and
    `pattern`, the span folders on disk and the checked window."""

    input_base: str
    pattern: str
    spans: Tuple[Span, ...]      # every span folder on disk, oldest first
    selected: Tuple[Span, ...]   # the newest `window` of them, oldest first
    rows: int
    quarantined_rows: int
    columns: Tuple[str, ...] = ()  # the header (as csv_checks.CsvInfo.columns)

    @property
    def newest(self) -> Span:
        return self.selected[-1]


def plan_input(cfg, expected_features=None, quarantine_root: Optional[str] = None
               ) -> Optional[SpanPlan]:
    """None when `cfg.data.path` is a CSV file or a plain directory of CSVs;
    else checks the CSVs of the newest `cfg.data.window` span folders (the ones
    this run reads) with `csv_checks.check_csv`, and returns the plan.

    Rows with missing/non-finite values are set aside per span under
    `quarantine_root/<span>/`; if any were, ExampleGen reads a mirror of the
    window's folders with the clean copies (see `mirror_for_quarantine`).
    """
    from pipeline import csv_checks
    from pipeline.csv_checks import InputError

    path = cfg.data.path
    pattern = cfg.data.span_pattern or detect_pattern(path)
    if pattern is None:
        return None
    if not os.path.isdir(path):
        raise InputError(path, problem=f"span pattern '{pattern}' needs --data to be a "
                                       f"directory of span folders")
    found = list_spans(path, pattern)
    selected = select(found, cfg.data.window)
    qroot = quarantine_root or os.path.join(cfg.output_dir, "quarantine", "spans")
    infos = []
    for s in selected:
        info = csv_checks.check_csv(s.path, label_column=cfg.data.label_column, mode="train",
                                    expected_features=expected_features,
                                    quarantine_dir=os.path.join(qroot, s.name))
        if infos and set(info.columns) != set(infos[0].columns):
            first = set(infos[0].columns)
            missing = sorted(first - set(info.columns))
            extra = sorted(set(info.columns) - first)
            what = "; ".join(p for p in (
                f"missing {', '.join(missing)}" if missing else "",
                f"extra {', '.join(extra)}" if extra else "") if p)
            raise InputError(info.files[0], 1, None,
                             f"columns differ from span folder {selected[0].name}/: {what}")
        infos.append(info)
    quarantined = sum(i.quarantined_rows for i in infos)
    if quarantined:
        input_base, pattern_used = mirror_for_quarantine(selected, pattern, qroot)
    else:
        input_base, pattern_used = os.path.abspath(path), pattern
    return SpanPlan(input_base=input_base, pattern=pattern_used, spans=tuple(found),
                    selected=tuple(selected), rows=sum(i.rows for i in infos),
                    quarantined_rows=quarantined, columns=tuple(infos[-1].columns))


def ingest_pipeline(cfg, input_base: str, pattern: str, span: int, connection_config,
                    beam_args: Sequence[str] = ()):
    """A pipeline of only CsvExampleGen, same pipeline name, node id, input and
    output config as `create_pipeline`'s, pinned to one span (RangeConfig
    static_range; TFX ingests one span per ExampleGen execution)."""
    from tfx.orchestration import pipeline as tfx_pipeline
    from tfx.proto import range_config_pb2

    from pipeline.pipeline import example_gen_component

    # Must equal create_pipeline's ExampleGen, or the window would mix
    # differently split spans.
    example_gen = example_gen_component(
        cfg, input_base, pattern,
        range_config=range_config_pb2.RangeConfig(static_range=range_config_pb2.StaticRange(
            start_span_number=span, end_span_number=span)))
    return tfx_pipeline.Pipeline(
        pipeline_name=cfg.pipeline_name, pipeline_root=cfg.pipeline_root,
        components=[example_gen], enable_cache=cfg.enable_cache,
        metadata_connection_config=connection_config, beam_pipeline_args=list(beam_args))


def backfill(cfg, plan: SpanPlan, connection_config) -> List[int]:
    """Ingests the spans of the window that ML Metadata has no Examples for
    (all but the newest, which the run itself ingests). Returns their numbers."""
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner

    have = set(ingested_spans(connection_config, cfg.pipeline_name))
    missing = [s.number for s in plan.selected[:-1] if s.number not in have]
    for number in missing:
        LocalDagRunner().run(ingest_pipeline(
            cfg, plan.input_base, plan.pattern, number, connection_config,
            list(cfg.beam_args)))
    return missing
