"""Where a run's input CSVs are, which spans it reads, and what each column is: planned once.

`locate(cfg)` decides CsvExampleGen's `input_base` and pattern without
reading data (the KFP compile, whose data may be on gs://). `roles(cfg)`
infers the column roles from a sample of the first rows (components/columns.py
rules; the Airflow DAG file uses it at parse time). `plan(cfg, ...)` does both
and runs the input checks (components/input_checks) on what the run reads --
the file, the directory's CSVs, or the newest `data.window` span folders --
and, in train mode with quarantine, points ExampleGen at the clean copies.
`anomaly-pipeline run` plans with quarantine; Airflow's `check_inputs` task
plans strictly.
"""
import os
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from components import columns as columns_lib
from components.columns import ColumnRoles
from components.errors import InputError
from components.input_checks import check_csv, read_header, resolve_csv_files
from components.input_checks.files import read_header_line
from components.settings import SettingsError
from pipeline import spans
from pipeline.spans import Span

QUARANTINE_DIR = "quarantine"
SPAN_QUARANTINE_DIR = os.path.join(QUARANTINE_DIR, "spans")


@dataclass(frozen=True)
class InputPlan:
    """What a run reads. `input_base` and `pattern` are CsvExampleGen's."""

    input_base: str
    pattern: str
    span_pattern: Optional[str] = None   # the span folders' pattern, when --data has spans
    spans: Tuple[Span, ...] = ()         # every span folder on disk, oldest first
    selected: Tuple[Span, ...] = ()      # the newest `window` of them, oldest first
    checked: Tuple[str, ...] = ()        # the files or span folders the checks read
    rows: int = 0
    quarantined_rows: int = 0
    quarantine_files: Tuple[str, ...] = ()
    columns: Tuple[str, ...] = ()        # the header
    roles: ColumnRoles = field(default_factory=ColumnRoles)
    delimiter: str = ","
    notes: Tuple[str, ...] = ()          # what was detected (delimiter, byte-order mark)
    missing_by_column: Mapping[str, int] = field(default_factory=dict)  # imputed empty cells

    @property
    def newest(self) -> Optional[Span]:
        return self.selected[-1] if self.selected else None

    def summary(self) -> Dict[str, Any]:
        """The run summary's `columns` (roles and why) and `input` parts."""
        return {"columns": self.roles.summary(),
                "input": {"delimiter": self.delimiter, "notes": list(self.notes),
                          "empty_cells": dict(self.missing_by_column),
                          "quarantine_files": list(self.quarantine_files)}}


def locate(cfg) -> InputPlan:
    """CsvExampleGen's input without reading data: a span pattern (configured, or
    detected by listing a local --data), a single CSV, or every *.csv of a directory."""
    data = cfg.data.path.rstrip("/") if "://" in cfg.data.path else cfg.data.path
    remote = "://" in data
    pattern = cfg.data.span_pattern
    if pattern is None and not remote and os.path.isdir(data):
        pattern = spans.detect_pattern(data)
    if pattern is not None:
        return InputPlan(data if remote else os.path.abspath(data), pattern, span_pattern=pattern)
    if remote:
        if data.endswith(".csv"):
            return InputPlan(os.path.dirname(data), os.path.basename(data))
        return InputPlan(data, "*.csv")
    if os.path.isdir(data) or not data.endswith(".csv"):
        return InputPlan(os.path.abspath(data), "*.csv")
    return InputPlan(os.path.dirname(os.path.abspath(data)), os.path.basename(data))


def _read_paths(cfg, where: InputPlan) -> Tuple[List[str], Tuple[Span, ...], Tuple[Span, ...]]:
    """(the paths the run reads: one file/directory or the window's span folders, every
    span on disk, the window)."""
    if where.span_pattern is None:
        if cfg.data.window > 1:
            raise InputError(cfg.data.path, problem=(
                f"--window {cfg.data.window} needs --data to be a directory of span folders "
                f"(span-N/ or YYYY-MM-DD/)"))
        return [cfg.data.path], (), ()
    if not os.path.isdir(cfg.data.path):
        raise InputError(cfg.data.path, problem=f"span pattern '{where.span_pattern}' needs "
                                                f"--data to be a directory of span folders")
    found = spans.list_spans(cfg.data.path, where.span_pattern)
    selected = spans.select(found, cfg.data.window)
    return [s.path for s in selected], tuple(found), tuple(selected)


def infer_roles(cfg, paths: Sequence[str], served: Optional[ColumnRoles] = None
                ) -> ColumnRoles:
    """The column roles of the input at `paths` (the newest path first is sampled).

    With `served` (the roles of the model served under --output) and no
    overrides in `cfg.columns`, the served model's roles are kept, so a daily
    retrain does not move a column between roles; otherwise the rules of
    components/columns.py run on a profile of the first `columns.sample_rows`
    rows of the newest path; the reasons (`why`) are the rules' where they agree.
    """
    c = cfg.columns
    header = read_header(paths[-1], cfg.data.delimiter)
    overridden = c.numeric or c.categorical or c.passthrough or c.time_features
    keep = served is not None and served.has_roles and not overridden and set(header) == (
        set(served.numeric) | set(served.categorical) | set(served.passthrough)
        | ({served.label} if served.label else set())) and served.label == \
        cfg.data.label_column
    try:
        inferred: Optional[ColumnRoles] = _inferred_roles(cfg, paths)
    except InputError:
        if not keep:
            raise
        inferred = None
    if not keep:
        return inferred
    why = {}
    for col in header:
        role = served.role_of(col)
        now = inferred.role_of(col) if inferred is not None else None
        why[col] = (inferred.why[col] if now == role else
                    f"{role}: as the model served from this --output (the rules alone would "
                    f"say {now}; a column flag or --allow-schema-change re-infers)")
    return ColumnRoles.from_dict({**served.to_dict(), "why": why})


def _inferred_roles(cfg, paths: Sequence[str]) -> ColumnRoles:
    """The rules of components/columns.py on a profile of the newest path."""
    from components.input_checks.profile import profile_csv

    c = cfg.columns
    header = read_header(paths[-1], cfg.data.delimiter)
    files = resolve_csv_files(paths[-1])
    try:
        delimiter = read_header_line(files[0], cfg.data.delimiter).delimiter
        profiles = profile_csv(files, c.sample_rows, delimiter)
    except Exception:  # noqa: BLE001 - pyarrow cannot read it: let the checks say where
        everything = ColumnRoles(label=cfg.data.label_column, passthrough=tuple(
            h for h in header if h != cfg.data.label_column))
        check_csv(paths[-1], label_column=cfg.data.label_column, roles=everything,
                  missing="impute", delimiter=cfg.data.delimiter)
        raise
    try:
        return columns_lib.infer_roles(header, cfg.data.label_column, c, profiles)
    except SettingsError as e:
        raise InputError(paths[-1], problem=str(e)) from None


def plan(cfg, quarantine: bool = True, expected_features: Optional[Sequence[str]] = None,
         served_roles: Optional[ColumnRoles] = None) -> InputPlan:
    """`locate` + the roles + the input checks of what this run reads (raises InputError).

    Empty number cells are imputed (`columns.missing` "impute") or set aside
    (`"quarantine"`); rows with infinite values are set aside. With
    `quarantine`, what is set aside goes under `<output>/quarantine/` and
    ExampleGen reads the clean copies; without, it is an error.
    `expected_features`: the served model's columns, when they must not change.
    """
    where = locate(cfg)
    label = cfg.data.label_column
    paths, found, selected = _read_paths(cfg, where)
    roles = infer_roles(cfg, paths, served_roles)
    qroot = os.path.join(cfg.output_dir, SPAN_QUARANTINE_DIR if selected else QUARANTINE_DIR)
    infos = []
    for i, p in enumerate(paths):
        qdir = (os.path.join(qroot, selected[i].name) if selected else qroot) \
            if quarantine else None
        info = check_csv(p, label_column=label, mode="train", expected_features=expected_features,
                         quarantine_dir=qdir, roles=roles, missing=cfg.columns.missing,
                         delimiter=cfg.data.delimiter)
        if infos and set(info.columns) != set(infos[0].columns):
            first = set(infos[0].columns)
            missing = sorted(first - set(info.columns))
            extra = sorted(set(info.columns) - first)
            what = "; ".join(x for x in (
                f"missing {', '.join(missing)}" if missing else "",
                f"extra {', '.join(extra)}" if extra else "") if x)
            raise InputError(info.files[0], 1, None,
                             f"columns differ from span folder {selected[0].name}/: {what}")
        infos.append(info)
    empty: Dict[str, int] = {}
    for info in infos:
        for name, n in info.missing_by_column:
            empty[name] = empty.get(name, 0) + n
    if cfg.columns.missing == "impute":
        roles = columns_lib.with_indicators(roles, empty)
    else:  # quarantine: those rows were set aside, no cell is imputed
        empty = {}
    quarantined = sum(i.quarantined_rows for i in infos)
    clean = sum(i.rows for i in infos) - quarantined
    if clean < cfg.data.min_rows:
        where_ = cfg.data.path if len(paths) > 1 else paths[0]
        kept = f" after {quarantined} quarantined" if quarantined else ""
        raise InputError(where_, None, None,
                         f"{clean} data rows{kept}; at least {cfg.data.min_rows} are needed to "
                         f"train and evaluate a model (data.min_rows)")
    notes = []
    last = infos[-1]
    if last.delimiter_detected and last.delimiter != ",":
        notes.append(f"delimiter {last.delimiter!r} detected (--delimiter to set it)")
    if any(i.bom for i in infos):
        notes.append("UTF-8 byte-order mark at the start of the file skipped")
    common = dict(checked=tuple(p for p in paths), rows=sum(i.rows for i in infos),
                  quarantined_rows=quarantined,
                  quarantine_files=tuple(i.quarantine_file for i in infos if i.quarantine_file),
                  columns=tuple(last.columns), roles=roles, delimiter=last.delimiter,
                  notes=tuple(notes), missing_by_column=empty)
    if not selected:
        files = list(last.clean_files)
        return InputPlan(os.path.dirname(os.path.abspath(files[0])),
                         os.path.basename(files[0]) if len(files) == 1 else "*.csv",
                         checked=tuple(last.files), **{k: v for k, v in common.items()
                                                       if k != "checked"})
    input_base, pattern = where.input_base, where.span_pattern
    if quarantined:
        input_base, pattern = spans.mirror_for_quarantine(selected, where.span_pattern, qroot)
    return InputPlan(input_base, pattern, span_pattern=where.span_pattern, spans=found,
                     selected=selected, **common)


def plan_without_checks(cfg) -> InputPlan:
    """The plan of a DAG built without running the checks (the Airflow DAG at parse
    time, the KFP compile): `locate`, and the roles and delimiter from a sample of a
    local --data, else from the settings alone (the `columns` section; every
    undeclared column numeric)."""
    where = locate(cfg)
    if "://" not in cfg.data.path:
        paths, _, _ = _read_paths(cfg, where)
        delimiter = read_header_line(resolve_csv_files(paths[-1])[0],
                                     cfg.data.delimiter).delimiter
        return replace(where, roles=infer_roles(cfg, paths), delimiter=delimiter)
    return replace(where, roles=_declared_roles(cfg), delimiter=cfg.data.delimiter or ",")


def _declared_roles(cfg) -> ColumnRoles:
    c = cfg.columns
    if not (c.numeric or c.categorical or c.passthrough):
        return ColumnRoles(label=cfg.data.label_column)  # every column numeric
    return ColumnRoles(label=cfg.data.label_column, numeric=tuple(c.numeric),
                       categorical=tuple(c.categorical),
                       passthrough=tuple(c.passthrough) + tuple(
                           t for t in c.time_features if t not in c.passthrough),
                       time_features=tuple(c.time_features), max_categories=c.max_categories,
                       min_frequency=c.min_frequency,
                       why={n: "declared in the config (remote data is not sampled)"
                            for n in c.numeric + c.categorical + c.passthrough})


# --------------------------------------------------------------------------- spans in ML Metadata


def backfill(cfg, input_plan: InputPlan, connection_config) -> List[int]:
    """Ingests the spans of the window ML Metadata has no Examples for (all but
    the newest, which the run itself ingests), one CsvExampleGen run each
    (TFX ingests one span per execution). Returns their numbers."""
    if len(input_plan.selected) < 2:
        return []
    from tfx.orchestration import pipeline as tfx_pipeline
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner
    from tfx.proto import range_config_pb2

    from components.example_gen.component import NODE_ID
    from pipeline import lineage
    from pipeline.dag import example_gen_component

    have = set(lineage.ingested_spans(connection_config, cfg.pipeline_name, NODE_ID))
    missing = [s.number for s in input_plan.selected[:-1] if s.number not in have]
    for number in missing:
        # The same ExampleGen as create_pipeline's, or the window would mix
        # differently split spans; pinned to one span.
        example_gen = example_gen_component(
            cfg, input_plan, range_config=range_config_pb2.RangeConfig(
                static_range=range_config_pb2.StaticRange(
                    start_span_number=number, end_span_number=number)))
        LocalDagRunner().run(tfx_pipeline.Pipeline(
            pipeline_name=cfg.pipeline_name, pipeline_root=cfg.pipeline_root,
            components=[example_gen], enable_cache=cfg.enable_cache,
            metadata_connection_config=connection_config,
            beam_pipeline_args=list(cfg.beam_args)))
    return missing


def span_summary(cfg, input_plan: InputPlan, backfilled: List[int], record) -> Dict[str, Any]:
    """The summary's `spans` part; `record` is the run's lineage.RunRecord (or None)."""
    trained = None
    if record is not None:
        trained = record.input_spans("Trainer")
    newest = input_plan.newest
    return {"pattern": input_plan.span_pattern, "newest": newest.name if newest else None,
            "newest_span": newest.number if newest else None,
            "window": cfg.data.window, "available": len(input_plan.spans),
            "checked": [s.name for s in input_plan.selected], "backfilled": backfilled,
            "trained_on_spans": trained}
