"""Where a run's input CSVs are and which spans it reads: planned once, for every runner.

`locate(cfg)` decides CsvExampleGen's `input_base` and pattern without
reading data (the KFP compile, whose data may be on gs://, and the Airflow
DAG file at parse time use it). `plan(cfg, ...)` also runs the input checks
(components/input_checks) on what the run reads -- the file, the directory's
CSVs, or the newest `data.window` span folders -- and, in train mode with
quarantine, points ExampleGen at the clean copies. `anomaly-pipeline run`
plans with quarantine; Airflow's `check_inputs` task plans strictly.
"""
import os
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from components.errors import InputError
from components.input_checks import check_csv
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
    columns: Tuple[str, ...] = ()        # the header

    @property
    def newest(self) -> Optional[Span]:
        return self.selected[-1] if self.selected else None


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


def plan(cfg, quarantine: bool = True,
         expected_features: Optional[Sequence[str]] = None) -> InputPlan:
    """`locate` + the input checks of what this run reads (raises InputError).

    With `quarantine`, rows with missing/non-finite values are set aside under
    `<output>/quarantine/` and ExampleGen reads the clean copies; without,
    they are errors. `expected_features`: the served model's, when the
    columns must not change.
    """
    where = locate(cfg)
    label = cfg.data.label_column
    if where.span_pattern is None:
        if cfg.data.window > 1:
            raise InputError(cfg.data.path, problem=(
                f"--window {cfg.data.window} needs --data to be a directory of span folders "
                f"(span-N/ or YYYY-MM-DD/)"))
        qdir = os.path.join(cfg.output_dir, QUARANTINE_DIR) if quarantine else None
        info = check_csv(cfg.data.path, label_column=label, mode="train",
                         expected_features=expected_features, quarantine_dir=qdir)
        files = list(info.clean_files)
        return InputPlan(os.path.dirname(os.path.abspath(files[0])),
                         os.path.basename(files[0]) if len(files) == 1 else "*.csv",
                         checked=tuple(info.files), rows=info.rows,
                         quarantined_rows=info.quarantined_rows, columns=info.columns)
    path = cfg.data.path
    if not os.path.isdir(path):
        raise InputError(path, problem=f"span pattern '{where.span_pattern}' needs --data to "
                                       f"be a directory of span folders")
    found = spans.list_spans(path, where.span_pattern)
    selected = spans.select(found, cfg.data.window)
    qroot = os.path.join(cfg.output_dir, SPAN_QUARANTINE_DIR)
    infos = []
    for s in selected:
        info = check_csv(s.path, label_column=label, mode="train",
                         expected_features=expected_features,
                         quarantine_dir=os.path.join(qroot, s.name) if quarantine else None)
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
    input_base, pattern = where.input_base, where.span_pattern
    if quarantined:
        input_base, pattern = spans.mirror_for_quarantine(selected, where.span_pattern, qroot)
    return InputPlan(input_base, pattern, span_pattern=where.span_pattern, spans=tuple(found),
                     selected=tuple(selected), checked=tuple(s.path for s in selected),
                     rows=sum(i.rows for i in infos), quarantined_rows=quarantined,
                     columns=tuple(infos[-1].columns))


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
            cfg, input_plan.input_base, input_plan.pattern,
            range_config=range_config_pb2.RangeConfig(static_range=range_config_pb2.StaticRange(
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
