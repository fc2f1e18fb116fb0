"""`check_csv`: the entry point of the input checks (see the package docstring)."""
import os
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from components.columns import ColumnRoles
from components.errors import MAX_EXAMPLES, InputError
from components.input_checks.cells import Spec
from components.input_checks.exact_scan import python_pass
from components.input_checks.fast_scan import arrow_scan
from components.input_checks.files import read_header_line, resolve_csv_files
from components.input_checks.messages import name_list
from components.input_checks.problems import MISSING, PRIORITY, SKIPPABLE, TOLERABLE, Scan
from components.input_checks.quarantine import QuarantineOutputs

MAX_QUARANTINE_FRACTION = 0.5
MODES = ("train", "score")
MISSING_MODES = ("impute", "quarantine")
BAD_ROWS = ("fail", "skip")


@dataclass(frozen=True)
class CsvInfo:
    """What `check_csv` found: the input is usable as described here.

    Attributes:
        path: the path given to `check_csv`.
        files: the input CSV files, in the order they were checked.
        columns: the header, in file order.
        feature_columns: every column but the label, in file order.
        label_column: the label column, or None.
        rows: data rows over all files (quarantined ones included).
        file_rows: data rows per file, aligned with `files`.
        quarantined_rows: rows set aside (train mode with a quarantine dir).
        quarantined_by_problem: ``(problem class, rows)`` pairs, e.g.
            ``(("missing", 12), ("non_finite", 3))``; a row may count in both.
        quarantine_examples: ``(file, line)`` of the first few quarantined rows.
        quarantine_file: ``<quarantine_dir>/quarantined.csv``, or None when
            nothing was quarantined.
        clean_files: the files to feed the pipeline: `files` when nothing was
            quarantined, else their copies in ``<quarantine_dir>/clean/``.
        clean_path: `path` when nothing was quarantined, else the clean copy
            (a file input) or the clean directory (a directory input).
        number_columns: the columns read as numbers (the rest but the label: text).
        missing_by_column: ``(column, empty cells)`` of the number columns that have any.
        delimiter: the files' delimiter; `delimiter_detected`: it was detected.
        bom: a file starts with a UTF-8 byte-order mark (skipped).
    """

    path: str
    files: Tuple[str, ...]
    columns: Tuple[str, ...]
    feature_columns: Tuple[str, ...]
    label_column: Optional[str]
    rows: int
    file_rows: Tuple[int, ...]
    quarantined_rows: int = 0
    quarantined_by_problem: Tuple[Tuple[str, int], ...] = ()
    quarantine_examples: Tuple[Tuple[str, int], ...] = ()
    quarantine_file: Optional[str] = None
    clean_files: Tuple[str, ...] = ()
    clean_path: str = ""
    number_columns: Tuple[str, ...] = ()
    missing_by_column: Tuple[Tuple[str, int], ...] = ()
    delimiter: str = ","
    delimiter_detected: bool = True
    bom: bool = False

    @property
    def clean_rows(self) -> int:
        """Rows left for the pipeline."""
        return self.rows - self.quarantined_rows


def _scan_file(path: str, spec: Spec, outputs: Optional[QuarantineOutputs]) -> Scan:
    """Check one file; raises its first fatal problem."""
    tolerate = outputs.tolerate if outputs is not None else frozenset()
    if spec.missing_ok:
        tolerate = tolerate | {MISSING}
    fast = arrow_scan(path, spec)
    if fast is not None and not len(fast[1]):
        if not fast[0]:
            raise InputError(path, problem="no data rows (the file has only a header)")
        return Scan(path, rows=fast[0], missing=fast[2])
    mark = outputs.quarantine_mark() if outputs is not None else -1
    scan = python_pass(path, spec, fast[1] if fast is not None else None, outputs)
    if fast is not None:
        scan.missing = fast[2]
    if fast is not None and scan.rows != fast[0] and scan.first_error(tolerate) is None:
        # The two readers disagree on the records (should not happen): trust
        # the csv module and check every row of this file.
        if outputs is not None:
            outputs.rollback(mark)
        scan = python_pass(path, spec, None, outputs)
    error = scan.first_error(tolerate)
    if error is not None:
        raise error
    if not scan.rows:
        raise InputError(path, problem="no data rows (the file has only a header)")
    return scan


def _header_mismatch(first: Sequence[str], other: Sequence[str]) -> str:
    missing = [n for n in first if n not in other]
    extra = [n for n in other if n not in first]
    parts = []
    if missing:
        parts.append(f"missing {name_list(missing)}")
    if extra:
        parts.append(f"extra {name_list(extra)}")
    if not parts:
        parts.append("same columns in a different order" if len(first) == len(other)
                     else "a column is repeated")
    return "; ".join(parts)


def _build_spec(path: str, columns: Sequence[str], label_column: Optional[str],
                expected_features: Optional[Iterable[str]], roles: Optional[ColumnRoles],
                optional_columns: Iterable[str], delimiter: str, missing_ok: bool,
                single_line: bool = False) -> Spec:
    if label_column is not None and label_column not in columns:
        raise InputError(path, 1, label_column, f"label column not found; available columns: "
                                                f"{name_list(list(columns))}")
    others = [(i, n) for i, n in enumerate(columns) if n != label_column]
    if not others:
        raise InputError(path, 1, None, f"no feature columns (only the label column "
                                        f"{label_column!r})")
    if expected_features is not None:
        expected = list(expected_features)
        expected_set, have = set(expected) | set(optional_columns), {n for _, n in others}
        missing = [n for n in expected if n not in have]
        extra = [n for _, n in others if n not in expected_set]
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} column(s) the model expects: "
                         f"{name_list(missing)}")
        if extra:
            parts.append(f"{len(extra)} column(s) the model does not know: "
                         f"{name_list(extra)}")
        if parts:
            raise InputError(path, 1, None, "columns do not match the model's features: "
                             + "; ".join(parts))
    label = None if label_column is None else (list(columns).index(label_column), label_column)
    numbers = set(roles.numeric) if roles is not None and roles.has_roles else None
    features = tuple((i, n) for i, n in others if numbers is None or n in numbers)
    texts = tuple((i, n) for i, n in others if numbers is not None and n not in numbers)
    return Spec(tuple(columns), features, label, texts, delimiter, missing_ok, single_line)


# --------------------------------------------------------------------------- entry point


def check_csv(path: "str | os.PathLike[str]", label_column: Optional[str] = None,
              expected_features: Optional[Iterable[str]] = None, mode: str = "train",
              quarantine_dir: "str | os.PathLike[str] | None" = None,
              roles: Optional[ColumnRoles] = None, missing: str = "quarantine",
              delimiter: Optional[str] = None, optional_columns: Iterable[str] = (),
              on_bad_rows: str = "fail") -> CsvInfo:
    """Validate the CSV file or directory `path`; see the package docstring.

    Args:
        path: a CSV file, or a directory whose ``*.csv`` files are the input.
        label_column: the 0/1 label column, if any; it must be present.
        expected_features: a trained model's columns; the input must have
            these (any order), optionally `label_column` and `optional_columns`
            (e.g. the model's passthrough columns), and nothing else.
        mode: ``"train"`` or ``"score"``; only training quarantines rows.
        quarantine_dir: in train mode, where rows with non-finite values (and,
            with ``missing="quarantine"``, empty number cells) are set aside
            (``quarantined.csv``) and clean copies written (``clean/``). Stale
            outputs there are removed; nothing is written when no row is
            quarantined.
        roles: which columns are numbers (`roles.numeric`); every other
            non-label column is text. None: every non-label column is a number.
        missing: ``"impute"``: empty (or ``NA``, ``nan``) number cells are
            fine, counted per column; ``"quarantine"``: they are a problem,
            set aside like non-finite values.
        delimiter: the delimiter; None detects it (``,``, ``;``, tab, ``|``).
        on_bad_rows: in score mode with a `quarantine_dir`, ``"skip"`` sets aside
            every record with a problem of its own (any class but the file-level
            ones) into ``quarantined.csv`` with a ``_problem`` column, and the
            clean copies hold the rest; ``"fail"``: such a record is an error.

    Returns:
        CsvInfo describing the input and, if rows were quarantined, the clean
        copies to use instead.

    Raises:
        InputError: the first problem found (one line, see `InputError`).
        ValueError: an unknown `mode`.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if missing not in MISSING_MODES:
        raise ValueError(f"missing must be one of {MISSING_MODES}, got {missing!r}")
    if on_bad_rows not in BAD_ROWS:
        raise ValueError(f"on_bad_rows must be one of {BAD_ROWS}, got {on_bad_rows!r}")
    path = os.fspath(path)
    files = resolve_csv_files(path)
    header = read_header_line(files[0], delimiter)
    bom = header.bom
    for f in files[1:]:
        other = read_header_line(f, header.delimiter)
        if other.names != header.names:
            raise InputError(f, 1, None, f"header differs from {os.path.basename(files[0])}: "
                                         f"{_header_mismatch(header.names, other.names)}")
        bom = bom or other.bom
    spec = _build_spec(files[0], header.names, label_column, expected_features, roles,
                       optional_columns, header.delimiter, missing == "impute",
                       single_line=mode == "score")

    skip = mode == "score" and on_bad_rows == "skip" and quarantine_dir is not None
    outputs = None
    if quarantine_dir is not None and (mode == "train" or skip):
        outputs = QuarantineOutputs(os.fspath(quarantine_dir), files, header.names,
                                    tolerate=SKIPPABLE if skip else TOLERABLE,
                                    with_problem=skip)
    try:
        scans = [_scan_file(f, spec, outputs) for f in files]
        rows = sum(s.rows for s in scans)
        quarantined = sum(s.quarantined for s in scans)
        if quarantined and quarantined > MAX_QUARANTINE_FRACTION * rows:
            first = next(s for s in scans if s.quarantined)
            q = first.quarantine_first
            assert q is not None
            share = f"{quarantined} of {rows} rows ({100.0 * quarantined / rows:.0f}%)"
            what = (f"cannot be scored, more than the {MAX_QUARANTINE_FRACTION:.0%} that "
                    f"--on-bad-rows skip sets aside" if skip else
                    f"have missing or non-finite values, more than the "
                    f"{MAX_QUARANTINE_FRACTION:.0%} that may be quarantined")
            raise InputError(first.path, q.line, q.column, f"{q.text}; {share} {what}; fix the "
                             f"data", quarantined, q.examples)
        if outputs is not None and quarantined:
            clean_files = tuple(outputs.finish(files))
            clean_path = outputs.clean_dir if os.path.isdir(path) else clean_files[0]
            quarantine_file: Optional[str] = outputs.quarantine_path
        else:
            if outputs is not None:
                outputs.discard()
            clean_files, clean_path, quarantine_file = tuple(files), path, None
    except BaseException:
        if outputs is not None:
            outputs.discard()
        raise

    by_problem: Dict[str, int] = {}
    examples: List[Tuple[str, int]] = []
    empty: Dict[str, int] = {}
    for s in scans:
        for name, n in s.missing.items():
            empty[name] = empty.get(name, 0) + n
        for cls, n in s.quarantined_by.items():
            by_problem[cls] = by_problem.get(cls, 0) + n
        if s.quarantine_first is not None:
            examples.extend((s.path, line) for line in s.quarantine_first.examples)
    return CsvInfo(
        path=path,
        files=tuple(files),
        columns=tuple(header.names),
        feature_columns=tuple(n for n in header.names if n != label_column),
        label_column=label_column,
        rows=rows,
        file_rows=tuple(s.rows for s in scans),
        quarantined_rows=quarantined,
        quarantined_by_problem=tuple(sorted(by_problem.items(), key=lambda kv: PRIORITY[kv[0]])),
        quarantine_examples=tuple(examples[:MAX_EXAMPLES]),
        quarantine_file=quarantine_file,
        clean_files=clean_files,
        clean_path=clean_path,
        number_columns=tuple(n for _, n in spec.features),
        missing_by_column=tuple((n, empty[n]) for _, n in spec.features if empty.get(n)),
        delimiter=header.delimiter,
        delimiter_detected=header.detected,
        bom=bom,
    )
