"""The input's files, their encoding and their header line."""
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from components.errors import InputError
from components.input_checks.messages import name_list, show, utf8_problem

MAX_HEADER_BYTES = 1 << 20
BOM = b"\xef\xbb\xbf"
# Delimiters detected, in tie-break order; how a message shows each.
DELIMITERS = {",": "','", ";": "';'", "\t": "'\\t'", "|": "'|'"}


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
                                       f"{name_list(names, quote=False)})")
    if not os.path.isfile(path):
        raise InputError(path, problem="not a regular file or directory")
    return [path]


def read_header(path: "str | os.PathLike[str]", delimiter: Optional[str] = None) -> List[str]:
    """The column names of `path` (a file, or a directory's first ``*.csv``).

    The first line split on the delimiter (`delimiter`, else detected: see
    `detect_delimiter`), a UTF-8 byte-order mark skipped, and validated:
    raises InputError for a missing/empty/non-UTF-8 file and a blank, quoted,
    space-padded or duplicated name.
    """
    return list(read_header_line(resolve_csv_files(path)[0], delimiter).names)


@dataclass(frozen=True)
class Header:
    names: Tuple[str, ...]
    raw: bytes        # the header line as in the file (BOM and line ending included)
    delimiter: str    # the delimiter of the file
    detected: bool    # the delimiter was detected (not given)
    bom: bool         # the file starts with a UTF-8 byte-order mark (skipped)


def detect_delimiter(header: str, first_row: str) -> Optional[str]:
    """The delimiter of a file from its header and first data row.

    Of ',', ';', tab and '|', the one that occurs most in the header and splits
    the first row into as many fields; ties go in that order. None when none
    occurs (a one-column file).
    """
    best, best_count = None, 0
    for d in DELIMITERS:
        n = header.count(d)
        consistent = not first_row or '"' in first_row or first_row.count(d) == n
        if n > best_count and consistent:
            best, best_count = d, n
    return best


def read_header_line(path: str, delimiter: Optional[str] = None) -> Header:
    try:
        with open(path, "rb") as f:
            raw = f.readline(MAX_HEADER_BYTES)
            peek = f.readline(MAX_HEADER_BYTES) if raw.endswith(b"\n") else b""
            while peek and not peek.strip():  # skip blank lines for the delimiter guess
                peek = f.readline(MAX_HEADER_BYTES)
    except OSError as e:
        raise InputError(path, problem=f"cannot read file: {e.strerror or e}") from None
    if not raw:
        raise InputError(path, problem="file is empty (0 bytes); expected a header line "
                                       "and data rows")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputError(path, 1, None, "file is UTF-16 encoded; save it as UTF-8")
    if raw.startswith(b"\x1f\x8b"):
        raise InputError(path, 1, None, "file is gzip-compressed; decompress it first")
    if raw.startswith(b"PK\x03\x04"):
        raise InputError(path, 1, None, "file is a ZIP archive (an Excel workbook?); export "
                                        "the data as CSV")
    if b"\x00" in raw:
        raise InputError(path, 1, None, "line contains NUL bytes: a binary file or UTF-16 "
                                        "text, not a UTF-8 CSV file")
    if len(raw) >= MAX_HEADER_BYTES and not raw.endswith(b"\n"):
        raise InputError(path, 1, None, f"first line is longer than "
                                        f"{MAX_HEADER_BYTES >> 20} MiB; is this a CSV file?")
    bom = raw.startswith(BOM)
    try:
        text = raw[len(BOM):].decode("utf-8") if bom else raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(path, 1, None, utf8_problem(raw, e)) from None
    line = text.rstrip("\r\n")
    if not line.strip():
        raise InputError(path, 1, None, "header line is empty; the first line must hold the "
                                        "column names")
    if "\r" in line:
        raise InputError(path, 1, None, "line 1 contains a carriage return (old Mac line "
                                        "endings?); save the file with \\n or \\r\\n line "
                                        "endings")
    if '"' in line:
        raise InputError(path, 1, None, "quoted column names are not supported; remove the "
                                        "quotes from line 1")
    first_row = peek.decode("utf-8", "replace").rstrip("\r\n")
    detected = delimiter is None
    if detected:
        delimiter = detect_delimiter(line, first_row) or ","
    names = line.strip().split(delimiter)
    if len(names) == 1:
        guess = guess_delimiter(line, delimiter) or guess_delimiter(first_row, delimiter)
        if guess:
            raise InputError(path, 1, None, f"found 1 column with the delimiter "
                                            f"{DELIMITERS.get(delimiter, repr(delimiter))}; is it "
                                            f"{guess}? pass --delimiter, or leave it out to "
                                            f"detect it")
    seen: Dict[str, int] = {}
    for i, name in enumerate(names, start=1):
        if not name.strip():
            raise InputError(path, 1, None, f"column {i} of {len(names)} has a blank name")
        if name != name.strip():
            raise InputError(path, 1, None, f"column name {show(name)} has leading/trailing "
                                            f"spaces; remove them")
        if name in seen:
            raise InputError(path, 1, name, f"duplicate column name (columns {seen[name]} "
                                            f"and {i})")
        seen[name] = i
    return Header(tuple(names), raw, delimiter, detected, bom)


def guess_delimiter(line: str, not_this: str = ",") -> Optional[str]:
    """How a message shows the delimiter (other than `not_this`) that `line` holds most."""
    counts = {d: line.count(d) for d in DELIMITERS if d != not_this}
    best = max(counts, key=lambda d: counts[d])
    return DELIMITERS[best] if counts[best] else None


