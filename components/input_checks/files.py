"""The input's files, their encoding and their header line."""
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from components.errors import InputError
from components.input_checks.messages import name_list, show, utf8_problem

MAX_HEADER_BYTES = 1 << 20
DELIMITERS = {";": "';'", "\t": "'\\t'", "|": "'|'"}


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


def read_header(path: "str | os.PathLike[str]") -> List[str]:
    """The column names of `path` (a file, or a directory's first ``*.csv``).

    Names are read as TFX's CsvExampleGen reads them (the first line, split on
    ``,``) and validated: raises InputError for a missing/empty/non-UTF-8
    file and a blank, quoted, space-padded or duplicated name or a wrong
    delimiter.
    """
    return list(read_header_line(resolve_csv_files(path)[0]).names)


@dataclass(frozen=True)
class Header:
    names: Tuple[str, ...]
    raw: bytes  # the header line as in the file, line ending included


def read_header_line(path: str) -> Header:
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
    if len(raw) >= MAX_HEADER_BYTES and not raw.endswith(b"\n"):
        raise InputError(path, 1, None, f"first line is longer than "
                                        f"{MAX_HEADER_BYTES >> 20} MiB; is this a CSV file?")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(path, 1, None, utf8_problem(raw, e)) from None
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
        guess = guess_delimiter(line) or guess_delimiter(peek.decode("utf-8", "replace"))
        if guess:
            raise InputError(path, 1, None, f"found 1 column; is the delimiter {guess}? "
                                            f"expected ','")
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
    return Header(tuple(names), raw)


def guess_delimiter(line: str) -> Optional[str]:
    counts = {d: line.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return DELIMITERS[best] if counts[best] else None


