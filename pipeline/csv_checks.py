"""Input CSV checks, run before any pipeline work.

A bad input file should cost the user one line, not a Beam traceback twenty
minutes into a run. `check_csv` streams the input files (never holding one
in memory) and raises a single `InputError` whose `str()` is one line::

    data.csv:17: f3: non-numeric value 'abc' (37 rows, first: 17, 20, 31, 44, 58)

What is checked (per file; all files of a directory must share one header):

* the path: missing, not a file, an empty directory or one without ``*.csv``;
* the file: empty (0 bytes), not UTF-8 (binary, UTF-16, a byte-order mark),
  header only;
* the header, read the way TFX's CsvExampleGen reads it (the first line split
  on ``,``): blank, quoted, space-padded or duplicate names, a wrong delimiter
  (one column while ``;``, tab or ``|`` would split it), the label column
  absent, no feature left, and the columns a trained model expects
  (``expected_features``: missing or extra names, order free);
* every data row: bytes that are not UTF-8, a wrong number of fields, a
  feature cell that is not a number, a label that is not 0/1 (or is empty),
  and feature cells that are empty/``NA`` (missing) or ``nan``/``inf``/overflow
  (non-finite).

Numbers follow Python's float grammar without its extras: ``1e-3``,
`` 2.5 ``, ``+3``, ``-0`` and ``.5`` are valid; ``1_000``, ``0x10``,
``1,5`` and integers outside the int64 range (TFX would turn the whole column
into text) are not.

Tolerance: with ``mode="train"`` and a ``quarantine_dir``, rows whose only
problems are missing or non-finite feature values are set aside instead of
failing the run: they go, with an extra ``_source_line`` column (and
``_source_file`` when the input is several files), to
``<quarantine_dir>/quarantined.csv``, and a copy of every input file without
them is written to ``<quarantine_dir>/clean/`` (same file names), which
`CsvInfo.clean_files` then points at. More than 50% of the rows quarantined is
an error. Everything else is always an error. Each problem class is counted
over the whole file (up to 5 example rows kept); of the classes present, the
one whose first occurrence comes first in the file is raised.

Speed (1M rows x 21 columns, 395 MB, 2 cores): a file is first scanned with
pyarrow's streaming CSV reader (features parsed as float64, a boolean mask
per batch): ~1.3 s, plus ~0.5 s to import pyarrow once. A clean file is done
then. Rows the scan flags (and only those) are re-checked in Python on a
second pass that splits lines without parsing the other rows, knows line
numbers and writes the quarantine/clean files (~1.5 s more). When pyarrow
cannot parse a file at all (ragged rows, text in a number column, bad UTF-8,
``+3``, a lone ``\r`` ...), the whole file is checked by the Python pass
(a regex accepts plain lines, the rest get cell-by-cell checks): ~3.5 s.
"""
from __future__ import annotations

import csv
import math
import os
import re
import shutil
from dataclasses import dataclass, field
from typing import IO, Any, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    "InputError", "CsvInfo", "resolve_csv_files", "read_header", "check_csv",
    "QUARANTINE_FILE", "CLEAN_DIR", "SOURCE_LINE_COLUMN", "SOURCE_FILE_COLUMN",
    "MAX_QUARANTINE_FRACTION", "MAX_EXAMPLES",
]

QUARANTINE_FILE = "quarantined.csv"
CLEAN_DIR = "clean"
SOURCE_LINE_COLUMN = "_source_line"
SOURCE_FILE_COLUMN = "_source_file"
MAX_QUARANTINE_FRACTION = 0.5
MAX_EXAMPLES = 5
MODES = ("train", "score")

_MAX_HEADER_BYTES = 1 << 20
_MAX_RECORD_LINES = 1000  # a quoted field still open after this many lines is an error
_ARROW_BLOCK_BYTES = 4 << 20
_SHOW_CHARS = 40
_WS = " \t\r\n\f\v"
_INT64_BOUND = 2.0 ** 63          # |x| >= this: re-check in Python (int64 range)
_DELIMITERS = {";": "';'", "\t": "'\\t'", "|": "'|'"}
_NUM_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_INT_RE = re.compile(r"[+-]?\d+", re.ASCII)
_NONFINITE_RE = re.compile(r"[+-]?(?:inf|infinity|nan)", re.ASCII | re.IGNORECASE)
# Cells read as "missing" (compared lower-cased, after stripping whitespace).
_NA_TOKENS = frozenset({"na", "n/a", "#n/a", "null", "none"})
# The subset pyarrow can recognise itself (exact, case-sensitive matches).
_ARROW_NULLS = ["", "NA", "N/A", "#N/A", "NULL", "null", "Null", "None", "none", "NONE",
                "na", "n/a"]

# Problem classes, in tie-break order (same first row: the earlier one wins).
ENCODING = "encoding"
MALFORMED = "malformed"
RAGGED = "ragged"
NON_NUMERIC = "non_numeric"
BAD_LABEL = "bad_label"
MISSING = "missing"
NON_FINITE = "non_finite"
_PRIORITY = {c: i for i, c in enumerate(
    (ENCODING, MALFORMED, RAGGED, NON_NUMERIC, BAD_LABEL, MISSING, NON_FINITE))}
TOLERABLE = frozenset({MISSING, NON_FINITE})


# --------------------------------------------------------------------------- API types


class InputError(Exception):
    """A problem with the user's input, reported as one line.

    ``str(e)`` is ``<path>:<row>: <column>: <problem>``; the row and column
    parts are left out when None, and when ``count > 1`` it ends with
    `` (<count> rows, first: <examples>)``.

    Attributes:
        path: the file (or directory) at fault, as given.
        row: 1-based line number in the file, the header being line 1; None
            for problems that are not about one line.
        column: the column name concerned, or None.
        problem: what is wrong, and where useful what to do about it.
        count: how many rows have this problem (1 for file-level problems).
        examples: line numbers of the first few (at most 5) offending rows.
    """

    def __init__(self, path: "str | os.PathLike[str]", row: Optional[int] = None,
                 column: Optional[str] = None, problem: str = "invalid input",
                 count: int = 1, examples: Optional[Sequence[int]] = None) -> None:
        self.path = os.fspath(path)
        self.row = row
        self.column = column
        self.problem = problem
        self.count = int(count)
        if examples is None:
            examples = [row] if row is not None else []
        self.examples = list(examples)[:MAX_EXAMPLES]
        super().__init__(self.message)

    @property
    def message(self) -> str:
        where = self.path if self.row is None else f"{self.path}:{self.row}"
        text = f"{where}: {self.column}: {self.problem}" if self.column is not None \
            else f"{where}: {self.problem}"
        if self.count > 1:
            shown = ", ".join(str(r) for r in self.examples)
            text += f" ({self.count} rows, first: {shown})" if shown else f" ({self.count} rows)"
        return " ".join(text.splitlines())  # one line, whatever the names contain

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):  # picklable despite the keyword-rich constructor
        return (type(self), (self.path, self.row, self.column, self.problem, self.count,
                             self.examples))


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

    @property
    def clean_rows(self) -> int:
        """Rows left for the pipeline."""
        return self.rows - self.quarantined_rows


# --------------------------------------------------------------------------- paths & header


def resolve_csv_files(path: "str | os.PathLike[str]") -> List[str]:
    """The CSV files `path` stands for: itself, or a directory's ``*.csv`` files.

    A directory yields its regular files whose names end in ``.csv``
    (case-sensitive, as TFX's ``*.csv`` pattern; not recursive), sorted by
    name. Raises InputError for a missing path, something that is neither a
    file nor a directory, and a directory without ``.csv`` files.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(path, problem="no such file or directory")
    if os.path.isdir(path):
        try:
            names = sorted(os.listdir(path))
        except OSError as e:
            raise InputError(path, problem=f"cannot list directory: {e.strerror}") from None
        files = [os.path.join(path, n) for n in names
                 if n.endswith(".csv") and os.path.isfile(os.path.join(path, n))]
        if files:
            return files
        if not names:
            raise InputError(path, problem="directory is empty; expected *.csv files")
        raise InputError(path, problem=f"directory has no *.csv files (found: "
                                       f"{_name_list(names, quote=False)})")
    if not os.path.isfile(path):
        raise InputError(path, problem="not a regular file or directory")
    return [path]


def read_header(path: "str | os.PathLike[str]") -> List[str]:
    """The column names of `path` (a file, or a directory's first ``*.csv``).

    Names are read as TFX's CsvExampleGen reads them (the first line, split on
    ``,``) and validated: raises InputError for a missing/empty/non-UTF-8
    file and a blank, quoted, space-padded or duplicated name or a wrong
    delimiter.
    """
    return list(_read_header(resolve_csv_files(path)[0]).names)


@dataclass(frozen=True)
class _Header:
    names: Tuple[str, ...]
    raw: bytes  # the header line as in the file, line ending included


def _read_header(path: str) -> _Header:
    try:
        with open(path, "rb") as f:
            raw = f.readline(_MAX_HEADER_BYTES)
            peek = f.readline(_MAX_HEADER_BYTES) if raw.endswith(b"\n") else b""
            while peek and not peek.strip():  # skip blank lines for the delimiter guess
                peek = f.readline(_MAX_HEADER_BYTES)
    except OSError as e:
        raise InputError(path, problem=f"cannot read file: {e.strerror or e}") from None
    if not raw:
        raise InputError(path, problem="file is empty (0 bytes); expected a header line "
                                       "and data rows")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(path, 1, None, "file is UTF-16 encoded; save it as UTF-8")
    if raw.startswith(b"\xef\xbb\xbf"):
        raise InputError(path, 1, None, "file starts with a UTF-8 byte-order mark (BOM), which "
                                        "would become part of the first column name; save it "
                                        "as UTF-8 without BOM")
    if raw.startswith(b"\x1f\x8b"):
        raise InputError(path, 1, None, "file is gzip-compressed; decompress it first")
    if raw.startswith(b"PK\x03\x04"):
        raise InputError(path, 1, None, "file is a ZIP archive (an Excel workbook?); export "
                                        "the data as CSV")
    if b"\x00" in raw:
        raise InputError(path, 1, None, "line contains NUL bytes: a binary file or UTF-16 "
                                        "text, not a UTF-8 CSV file")
    if len(raw) >= _MAX_HEADER_BYTES and not raw.endswith(b"\n"):
        raise InputError(path, 1, None, f"first line is longer than "
                                        f"{_MAX_HEADER_BYTES >> 20} MiB; is this a CSV file?")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(path, 1, None, _utf8_problem(raw, e)) from None
    line = text.rstrip("\r\n")
    if not line.strip():
        raise InputError(path, 1, None, "header line is empty; the first line must hold the "
                                        "comma-separated column names")
    if "\r" in line:
        raise InputError(path, 1, None, "line 1 contains a carriage return (old Mac line "
                                        "endings?); save the file with \\n or \\r\\n line "
                                        "endings")
    if '"' in line:
        raise InputError(path, 1, None, "quoted column names are not supported (TFX splits the "
                                        "header line on ','); remove the quotes from line 1")
    names = line.strip().split(",")  # exactly io_utils.load_csv_column_names
    if len(names) == 1:
        guess = _guess_delimiter(line) or _guess_delimiter(peek.decode("utf-8", "replace"))
        if guess:
            raise InputError(path, 1, None, f"found 1 column; is the delimiter {guess}? "
                                            f"expected ','")
    seen: Dict[str, int] = {}
    for i, name in enumerate(names, start=1):
        if not name.strip():
            raise InputError(path, 1, None, f"column {i} of {len(names)} has a blank name")
        if name != name.strip():
            raise InputError(path, 1, None, f"column name {_show(name)} has leading/trailing "
                                            f"spaces; remove them")
        if name in seen:
            raise InputError(path, 1, name, f"duplicate column name (columns {seen[name]} "
                                            f"and {i})")
        seen[name] = i
    return _Header(tuple(names), raw)


def _guess_delimiter(line: str) -> Optional[str]:
    counts = {d: line.count(d) for d in _DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return _DELIMITERS[best] if counts[best] else None


# --------------------------------------------------------------------------- cell checks


def _show(value: str) -> str:
    """A value for a message: quoted, escaped, truncated."""
    if len(value) > _SHOW_CHARS:
        value = value[:_SHOW_CHARS - 3] + "..."
    return repr(value)


def _name_list(names: Sequence[str], quote: bool = True, limit: int = 12) -> str:
    shown = [repr(n) if quote else n for n in names[:limit]]
    more = f", ... (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(shown) + more


def _utf8_problem(raw: bytes, e: UnicodeDecodeError) -> str:
    return (f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at position {e.start + 1}); "
            f"save the file as UTF-8")


def _classify_feature(value: str) -> Tuple[Optional[str], str]:
    """(problem class or None, message) for one feature cell."""
    s = value.strip(_WS)
    if not s:
        return MISSING, "missing value (empty cell)"
    if s.lower() in _NA_TOKENS:
        return MISSING, f"missing value {_show(value)}"
    if _NUM_RE.fullmatch(s):
        x = float(s)
        if not math.isfinite(x):
            return NON_FINITE, f"value {_show(value)} overflows to infinity"
        if abs(x) >= _INT64_BOUND and _INT_RE.fullmatch(s) \
                and not -2 ** 63 <= int(s) < 2 ** 63:
            return NON_NUMERIC, (f"integer {_show(value)} does not fit in 64 bits (TFX would "
                                 f"read the column as text); write it as a float, e.g. {x:.6g}")
        return None, ""
    if _NONFINITE_RE.fullmatch(s):
        return NON_FINITE, f"non-finite value {_show(value)}"
    return NON_NUMERIC, f"non-numeric value {_show(value)}"


def _label_problem(value: Optional[str]) -> Optional[str]:
    """Why `value` is not a valid 0/1 label, or None when it is."""
    s = (value or "").strip(_WS)
    if not s:
        return "empty label; expected 0 or 1"
    if _NUM_RE.fullmatch(s) and float(s) in (0.0, 1.0):
        return None
    return f"label must be 0 or 1, found {_show(value or '')}"


@dataclass(frozen=True)
class _Spec:
    """What a data row must look like."""

    columns: Tuple[str, ...]
    features: Tuple[Tuple[int, str], ...]  # (index, name)
    label: Optional[Tuple[int, str]]

    @property
    def ncols(self) -> int:
        return len(self.columns)


def _check_record(row: List[str], raw: str, spec: _Spec) -> List[Tuple[str, Optional[str], str]]:
    """Problems of one non-blank record: ``(class, column, message)``, one per class."""
    n = len(row)
    if n != spec.ncols:
        text = f"expected {spec.ncols} fields, found {n}"
        if n == 1 and spec.ncols > 1:
            guess = _guess_delimiter(row[0])
            if guess:
                text += f"; is the delimiter {guess}? expected ','"
        lines = raw.count("\n") + (0 if raw.endswith("\n") else 1)
        if lines > 1:
            text += f" (the record spans {lines} lines: an unbalanced quote?)"
        return [(RAGGED, None, text)]
    found: Dict[str, Tuple[Optional[str], str]] = {}
    try:  # fast path: plain finite numbers everywhere
        values = [float(row[i]) for i, _ in spec.features]
        ok = (math.isfinite(sum(values)) and -_INT64_BOUND < min(values)
              and max(values) < _INT64_BOUND and raw.isascii() and "_" not in raw)
    except ValueError:
        ok = False
    if not ok:
        for i, name in spec.features:
            cls, text = _classify_feature(row[i])
            if cls is not None and cls not in found:
                found[cls] = (name, text)
    if spec.label is not None:
        value = row[spec.label[0]]
        if value != "0" and value != "1":
            text = _label_problem(value)
            if text is not None:
                found[BAD_LABEL] = (spec.label[1], text)
    return [(cls, col, text) for cls, (col, text) in found.items()]


# --------------------------------------------------------------------------- scanning


@dataclass
class _Tally:
    """Count, first occurrence and example rows of one problem class."""

    count: int = 0
    line: int = 0
    column: Optional[str] = None
    text: str = ""
    examples: List[int] = field(default_factory=list)

    def add(self, line: int, column: Optional[str], text: str) -> None:
        if not self.count:
            self.line, self.column, self.text = line, column, text
        self.count += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(line)


@dataclass
class _Scan:
    """What one pass over one file found."""

    path: str
    rows: int = 0
    tallies: Dict[str, _Tally] = field(default_factory=dict)
    quarantined: int = 0
    quarantined_by: Dict[str, int] = field(default_factory=dict)
    quarantine_first: Optional[_Tally] = None  # first quarantined problem + example lines

    def add(self, cls: str, line: int, column: Optional[str], text: str) -> None:
        self.tallies.setdefault(cls, _Tally()).add(line, column, text)

    def first_error(self, tolerate: Iterable[str]) -> Optional[InputError]:
        tolerate = frozenset(tolerate)
        fatal = [(t.line, _PRIORITY[c], t) for c, t in self.tallies.items()
                 if t.count and c not in tolerate]
        if not fatal:
            return None
        _, _, t = min(fatal, key=lambda x: (x[0], x[1]))
        return InputError(self.path, t.line, t.column, t.text, t.count, t.examples)


class _Outputs:
    """The quarantine file and the clean copies, written during the Python pass."""

    def __init__(self, quarantine_dir: str, files: Sequence[str], columns: Sequence[str]):
        self.dir = os.fspath(quarantine_dir)
        self.clean_dir = os.path.join(self.dir, CLEAN_DIR)
        self.quarantine_path = os.path.join(self.dir, QUARANTINE_FILE)
        self.multi = len(files) > 1
        self.header = list(columns) + [SOURCE_LINE_COLUMN] + (
            [SOURCE_FILE_COLUMN] if self.multi else [])
        clean_real = os.path.realpath(self.clean_dir)
        for f in files:
            real = os.path.realpath(f)
            if os.path.dirname(real) == clean_real or real == os.path.realpath(
                    self.quarantine_path):
                raise InputError(f, problem=f"input is an output of a previous check "
                                            f"({self.dir}); pass the original data")
        self.written: List[str] = []
        self._preexisting = {d for d in (self.dir, self.clean_dir) if os.path.isdir(d)}
        self._q: Optional[IO[str]] = None
        self._qw: Any = None
        self._header_end = 0
        self._remove_stale()

    def _remove_stale(self) -> None:
        if os.path.isfile(self.quarantine_path):
            os.remove(self.quarantine_path)
        if os.path.isdir(self.clean_dir):
            for name in os.listdir(self.clean_dir):
                p = os.path.join(self.clean_dir, name)
                if name.endswith(".csv") and os.path.isfile(p):
                    os.remove(p)

    def clean_target(self, src: str) -> str:
        return os.path.join(self.clean_dir, os.path.basename(src))

    def open_clean(self, src: str) -> IO[bytes]:
        os.makedirs(self.clean_dir, exist_ok=True)
        dst = self.clean_target(src)
        if dst not in self.written:
            self.written.append(dst)
        return open(dst, "wb")

    def quarantine_mark(self) -> int:
        """Where the next file's quarantined rows start (see `rollback`)."""
        if self._q is None:
            return -1  # not opened yet: everything after the header
        self._q.flush()
        return self._q.tell()

    def rollback(self, mark: int) -> None:
        """Forget the rows quarantined since `mark`, to check a file again."""
        if self._q is not None:
            self._q.flush()
            self._q.seek(mark if mark >= 0 else self._header_end)
            self._q.truncate()

    def quarantine(self, row: List[str], line: int, src: str) -> None:
        if self._q is None:
            os.makedirs(self.dir, exist_ok=True)
            self._q = open(self.quarantine_path, "w", encoding="utf-8", newline="")
            self._qw = csv.writer(self._q, lineterminator="\n")
            self._qw.writerow(self.header)
            self._q.flush()
            self._header_end = self._q.tell()
        self._qw.writerow(row + [line] + ([os.path.basename(src)] if self.multi else []))

    def close(self) -> None:
        if self._q is not None:
            self._q.close()
            self._q = None

    def finish(self, files: Sequence[str]) -> List[str]:
        """Close, and copy into clean/ the files that had nothing to quarantine."""
        self.close()
        out = []
        for f in files:
            dst = self.clean_target(f)
            if dst not in self.written:
                os.makedirs(self.clean_dir, exist_ok=True)
                shutil.copyfile(f, dst)
                self.written.append(dst)
            out.append(dst)
        return out

    def discard(self) -> None:
        """Remove everything written (nothing quarantined, or an error)."""
        self.close()
        for p in self.written + [self.quarantine_path]:
            if os.path.isfile(p):
                os.remove(p)
        self.written = []
        for d in (self.clean_dir, self.dir):
            if d not in self._preexisting:
                try:
                    os.rmdir(d)  # a directory we created, if we left it empty
                except OSError:
                    pass


def _arrow_scan(path: str, spec: _Spec) -> Optional[Tuple[int, np.ndarray]]:
    """Fast pass: (data rows, sorted 0-based indices of rows to re-check), or
    None when pyarrow cannot read the file (the Python pass will say why)."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.csv as pcsv
    except ImportError:  # pragma: no cover - pyarrow ships with TFX
        return None
    names = [f"c{i}" for i in range(spec.ncols)]
    types = {names[i]: pa.float64() for i, _ in spec.features}
    if spec.label is not None:
        types[names[spec.label[0]]] = pa.string()
    rows, flagged = 0, []
    reader = None
    try:
        reader = pcsv.open_csv(
            path,
            read_options=pcsv.ReadOptions(skip_rows=1, column_names=names,
                                          block_size=_ARROW_BLOCK_BYTES),
            parse_options=pcsv.ParseOptions(delimiter=",", newlines_in_values=True,
                                            ignore_empty_lines=True),
            convert_options=pcsv.ConvertOptions(column_types=types, null_values=_ARROW_NULLS,
                                                strings_can_be_null=False,
                                                quoted_strings_can_be_null=True))
        for batch in reader:
            n = batch.num_rows
            bad = np.zeros(n, dtype=bool)
            for i, _ in spec.features:
                v = batch.column(i).to_numpy(zero_copy_only=False)  # nulls -> nan
                with np.errstate(invalid="ignore"):
                    bad |= ~(np.abs(v) < _INT64_BOUND)  # nan, inf, huge
            if spec.label is not None:
                col = batch.column(spec.label[0])
                if col.null_count:
                    bad |= col.is_null().to_numpy(zero_copy_only=False)
                wrong = [u for u in pc.unique(col).to_pylist()
                         if u is not None and u not in ("0", "1") and _label_problem(u)]
                if wrong:
                    bad |= pc.is_in(col, value_set=pa.array(wrong, pa.string())).to_numpy(
                        zero_copy_only=False)
            idx = np.flatnonzero(bad)
            if idx.size:
                flagged.append(idx + rows)
            rows += n
    except (pa.ArrowException, ValueError, OSError):
        return None
    finally:
        close = getattr(reader, "close", None)
        if close is not None:
            try:
                close()
            except Exception:  # noqa: BLE001 - closing a failed reader
                pass
    if rows > _count_lines(path) - 1:
        # More records than lines: pyarrow split lines on a lone '\r', which
        # TFX does not. Let the Python pass say where.
        return None
    return rows, (np.concatenate(flagged) if flagged else np.empty(0, dtype=np.int64))


def _count_lines(path: str) -> int:
    """Physical lines in `path` (a last line without a newline counts)."""
    lines, last = 0, b"\n"
    with open(path, "rb") as f:
        while True:
            chunk = f.read(_ARROW_BLOCK_BYTES)
            if not chunk:
                break
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (last != b"\n")


def _line_regex(spec: _Spec) -> "re.Pattern[bytes]":
    """A whole unquoted data line whose every cell is plainly valid.

    A strict subset of what the cell checks accept (at most 18 integer digits
    and 2 exponent digits, so finite and within int64): a line it matches
    needs no further look; one it misses gets the exact checks.
    """
    number = rb"[ \t]*[+-]?(?:\d{1,18}(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,2})?[ \t]*"
    label = rb"[ \t]*[01][ \t]*"
    cells = [label if spec.label is not None and i == spec.label[0] else number
             for i in range(spec.ncols)]
    return re.compile(b",".join(cells) + rb"\r?\n?")


def _python_pass(path: str, spec: _Spec, recheck: Optional[np.ndarray],
                 outputs: Optional[_Outputs]) -> _Scan:
    """Exact pass: line numbers, problem tallies, quarantine and clean copy.

    Records are assembled the way TFX's CsvExampleGen does (lines are joined
    while the count of double quotes is odd; blank lines are skipped) and
    parsed with the csv module when they hold a quote, else split on ``,``.

    With `recheck` (sorted 0-based record indices flagged by the fast pass)
    only those records get the cell checks; without it every record does,
    lines that match `_line_regex` being accepted at once. With `outputs`,
    records whose only problems are tolerable are quarantined and the others
    copied byte for byte into the clean copy.
    """
    scan = _Scan(path)
    full = recheck is None
    flags = recheck if recheck is not None else np.empty(0, dtype=np.int64)
    nflags, ptr = len(flags), 0
    next_flag = int(flags[0]) if nflags else -1
    plain_line = _line_regex(spec).fullmatch if full else None
    commas = spec.ncols - 1

    with open(path, "rb") as fb:
        header_raw = fb.readline(_MAX_HEADER_BYTES)
        clean = outputs.open_clean(path) if outputs is not None else None
        try:
            if clean is not None:
                clean.write(header_raw)
            lineno, record = 1, 0
            for raw in fb:
                lineno += 1
                start = lineno
                quoted = b'"' in raw
                if quoted:  # a quoted field may run over several lines
                    quotes = raw.count(b'"')
                    if quotes % 2:
                        parts = [raw]
                        while quotes % 2 and len(parts) <= _MAX_RECORD_LINES:
                            more = next(fb, None)
                            if more is None:
                                break
                            lineno += 1
                            parts.append(more)
                            quotes += more.count(b'"')
                        if quotes % 2:  # cannot find the next record: stop here
                            scan.add(MALFORMED, start, None, "unbalanced double quote: a "
                                     "quoted field opened on this line is never closed")
                            break
                        raw = b"".join(parts)
                elif not raw.strip(b"\r\n"):
                    continue  # blank line, skipped like TFX and pandas do
                index, record = record, record + 1

                if full:
                    if not quoted and plain_line(raw):
                        if clean is not None:
                            clean.write(raw)
                        continue
                elif index == next_flag:
                    ptr += 1
                    next_flag = int(flags[ptr]) if ptr < nflags else -1
                elif quoted or raw.count(b",") == commas:
                    # The fast pass parsed this record's cells: nothing to see.
                    if clean is not None:
                        clean.write(raw)
                    continue

                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    scan.add(ENCODING, start + raw.count(b"\n", 0, e.start), None,
                             _utf8_problem(raw, e))
                    text = raw.decode("utf-8", "replace")
                if quoted:
                    try:
                        row = next(csv.reader([text]), [])
                    except csv.Error as e:
                        scan.add(MALFORMED, start, None, f"malformed CSV: {e}")
                        continue
                else:
                    line = text.rstrip("\r\n")
                    if "\r" in line:
                        scan.add(MALFORMED, start, None, "carriage return (\\r) inside the "
                                 "line: mixed line endings? save the file with \\n or \\r\\n "
                                 "line endings")
                        continue
                    row = line.split(",")
                problems = _check_record(row, text, spec)
                for cls, column, message in problems:
                    scan.add(cls, start, column, message)
                if outputs is not None and problems and all(p[0] in TOLERABLE
                                                            for p in problems):
                    outputs.quarantine(row, start, path)
                    scan.quarantined += 1
                    for cls, _, _ in problems:
                        scan.quarantined_by[cls] = scan.quarantined_by.get(cls, 0) + 1
                    if scan.quarantine_first is None:
                        scan.quarantine_first = _Tally()
                        scan.quarantine_first.add(start, problems[0][1], problems[0][2])
                    else:
                        scan.quarantine_first.add(start, None, "")
                elif clean is not None:
                    clean.write(raw)
            scan.rows = record
        finally:
            if clean is not None:
                clean.close()
    return scan


def _scan_file(path: str, spec: _Spec, outputs: Optional[_Outputs]) -> _Scan:
    """Check one file; raises its first fatal problem."""
    tolerate = TOLERABLE if outputs is not None else frozenset()
    fast = _arrow_scan(path, spec)
    if fast is not None and not len(fast[1]):
        if not fast[0]:
            raise InputError(path, problem="no data rows (the file has only a header)")
        return _Scan(path, rows=fast[0])
    mark = outputs.quarantine_mark() if outputs is not None else -1
    scan = _python_pass(path, spec, fast[1] if fast is not None else None, outputs)
    if fast is not None and scan.rows != fast[0] and scan.first_error(tolerate) is None:
        # The two readers disagree on the records (should not happen): trust
        # the csv module and check every row of this file.
        if outputs is not None:
            outputs.rollback(mark)
        scan = _python_pass(path, spec, None, outputs)
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
        parts.append(f"missing {_name_list(missing)}")
    if extra:
        parts.append(f"extra {_name_list(extra)}")
    if not parts:
        parts.append("same columns in a different order" if len(first) == len(other)
                     else "a column is repeated")
    return "; ".join(parts)


def _build_spec(path: str, columns: Sequence[str], label_column: Optional[str],
                expected_features: Optional[Iterable[str]]) -> _Spec:
    if label_column is not None and label_column not in columns:
        raise InputError(path, 1, label_column, f"label column not found; available columns: "
                                                f"{_name_list(list(columns))}")
    features = tuple((i, n) for i, n in enumerate(columns) if n != label_column)
    if not features:
        raise InputError(path, 1, None, f"no feature columns (only the label column "
                                        f"{label_column!r})")
    if expected_features is not None:
        expected = list(expected_features)
        expected_set, have = set(expected), {n for _, n in features}
        missing = [n for n in expected if n not in have]
        extra = [n for _, n in features if n not in expected_set]
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} column(s) the model expects: "
                         f"{_name_list(missing)}")
        if extra:
            parts.append(f"{len(extra)} column(s) the model does not know: "
                         f"{_name_list(extra)}")
        if parts:
            raise InputError(path, 1, None, "columns do not match the model's features: "
                             + "; ".join(parts))
    label = None if label_column is None else (list(columns).index(label_column), label_column)
    return _Spec(tuple(columns), features, label)


# --------------------------------------------------------------------------- entry point


def check_csv(path: "str | os.PathLike[str]", label_column: Optional[str] = None,
              expected_features: Optional[Iterable[str]] = None, mode: str = "train",
              quarantine_dir: "str | os.PathLike[str] | None" = None) -> CsvInfo:
    """Validate the CSV file or directory `path`; see the module docstring.

    Args:
        path: a CSV file, or a directory whose ``*.csv`` files are the input.
        label_column: the 0/1 label column, if any; it must be present.
        expected_features: a trained model's feature names; the input must
            have exactly these (any order) plus, optionally, `label_column`.
        mode: ``"train"`` or ``"score"``; only training quarantines rows.
        quarantine_dir: in train mode, where rows with missing/non-finite
            feature values are set aside (``quarantined.csv``) and clean
            copies written (``clean/``). Stale outputs there are removed;
            nothing is written when no row is quarantined.

    Returns:
        CsvInfo describing the input and, if rows were quarantined, the clean
        copies to use instead.

    Raises:
        InputError: the first problem found (one line, see `InputError`).
        ValueError: an unknown `mode`.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    path = os.fspath(path)
    files = resolve_csv_files(path)
    header = _read_header(files[0])
    for f in files[1:]:
        other = _read_header(f)
        if other.names != header.names:
            raise InputError(f, 1, None, f"header differs from {os.path.basename(files[0])}: "
                                         f"{_header_mismatch(header.names, other.names)}")
    spec = _build_spec(files[0], header.names, label_column, expected_features)

    outputs = (_Outputs(os.fspath(quarantine_dir), files, header.names)
               if mode == "train" and quarantine_dir is not None else None)
    try:
        scans = [_scan_file(f, spec, outputs) for f in files]
        rows = sum(s.rows for s in scans)
        quarantined = sum(s.quarantined for s in scans)
        if quarantined and quarantined > MAX_QUARANTINE_FRACTION * rows:
            first = next(s for s in scans if s.quarantined)
            q = first.quarantine_first
            assert q is not None
            raise InputError(
                first.path, q.line, q.column,
                f"{q.text}; {quarantined} of {rows} rows ({100.0 * quarantined / rows:.0f}%) "
                f"have missing or non-finite values, more than the "
                f"{MAX_QUARANTINE_FRACTION:.0%} that may be quarantined; fix the data",
                quarantined, q.examples)
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
    for s in scans:
        for cls, n in s.quarantined_by.items():
            by_problem[cls] = by_problem.get(cls, 0) + n
        if s.quarantine_first is not None:
            examples.extend((s.path, line) for line in s.quarantine_first.examples)
    return CsvInfo(
        path=path,
        files=tuple(files),
        columns=tuple(header.names),
        feature_columns=tuple(n for _, n in spec.features),
        label_column=label_column,
        rows=rows,
        file_rows=tuple(s.rows for s in scans),
        quarantined_rows=quarantined,
        quarantined_by_problem=tuple(sorted(by_problem.items(), key=lambda kv: _PRIORITY[kv[0]])),
        quarantine_examples=tuple(examples[:MAX_EXAMPLES]),
        quarantine_file=quarantine_file,
        clean_files=clean_files,
        clean_path=clean_path,
    )
