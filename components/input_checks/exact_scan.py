"""The exact pass: records as TFX assembles them, line numbers, tallies, quarantine."""
import csv
import re
from typing import Optional

import numpy as np

from components.input_checks.cells import Spec, check_record
from components.input_checks.files import MAX_HEADER_BYTES
from components.input_checks.messages import utf8_problem
from components.input_checks.problems import ENCODING, MALFORMED, UNCLOSED, Scan, Tally
from components.input_checks.quarantine import QuarantineOutputs

MAX_RECORD_LINES = 1000  # a quoted field still open after this many lines is an error


def line_regex(spec: Spec) -> "re.Pattern[bytes]":
    """A whole unquoted data line whose every cell is plainly valid.

    A strict subset of what the cell checks accept (at most 18 integer digits
    and 2 exponent digits, so finite): a line it matches needs no further
    look; one it misses gets the exact checks. Text cells are anything without
    the delimiter or a quote.
    """
    number = rb"[ \t]*[+-]?(?:\d{1,18}(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,2})?[ \t]*"
    label = rb"[ \t]*[01][ \t]*"
    delim = re.escape(spec.delimiter.encode())
    text = rb'[^"\r\n' + delim + rb"]*"
    kinds = {i: text for i, _ in spec.texts}
    if spec.label is not None:
        kinds[spec.label[0]] = label
    cells = [kinds.get(i, number) for i in range(spec.ncols)]
    return re.compile(delim.join(cells) + rb"\r?\n?")


def python_pass(path: str, spec: Spec, recheck: Optional[np.ndarray],
                 outputs: Optional[QuarantineOutputs]) -> Scan:
    """Exact pass: line numbers, problem tallies, quarantine and clean copy.

    Records are assembled the way TFX's CsvExampleGen does (lines are joined
    while the count of double quotes is odd; blank lines are skipped) and
    parsed with the csv module when they hold a quote, else split on the
    delimiter. Empty number cells are counted per column (full pass only: the
    fast pass counts them otherwise).

    With `recheck` (sorted 0-based record indices flagged by the fast pass)
    only those records get the cell checks; without it every record does,
    lines that match `_line_regex` being accepted at once. With `outputs`,
    records whose only problems are tolerable are quarantined and the others
    copied byte for byte into the clean copy.
    """
    scan = Scan(path)
    full = recheck is None
    flags = recheck if recheck is not None else np.empty(0, dtype=np.int64)
    nflags, ptr = len(flags), 0
    next_flag = int(flags[0]) if nflags else -1
    plain_line = line_regex(spec).fullmatch if full else None
    commas = spec.ncols - 1
    delim = spec.delimiter
    delim_bytes = delim.encode()

    with open(path, "rb") as fb:
        header_raw = fb.readline(MAX_HEADER_BYTES)
        clean = outputs.open_clean(path) if outputs is not None else None
        try:
            if clean is not None:
                clean.write(header_raw)
            lineno, record = 1, 0
            for raw in fb:
                lineno += 1
                start = lineno
                broken = None  # a problem of the record as a whole
                quoted = b'"' in raw
                if quoted:  # a quoted field may run over several lines
                    quotes = raw.count(b'"')
                    if quotes % 2:
                        parts = [raw]
                        while quotes % 2 and len(parts) <= MAX_RECORD_LINES:
                            more = next(fb, None)
                            if more is None:
                                break
                            lineno += 1
                            parts.append(more)
                            quotes += more.count(b'"')
                        if quotes % 2:  # cannot find the next record: stop here
                            scan.add(UNCLOSED, start, None, "unbalanced double quote: a "
                                     "quoted field opened on this line is never closed")
                            break
                        raw = b"".join(parts)
                        if spec.single_line:
                            broken = (MALFORMED, None, f"a quoted value holds a line break "
                                      f"(the record runs over lines {start}-{lineno}); score "
                                      f"reads one record per line: remove the line breaks "
                                      f"inside values")
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
                elif broken is None and (quoted or raw.count(delim_bytes) == commas):
                    # The fast pass parsed this record's cells: nothing to see.
                    if clean is not None:
                        clean.write(raw)
                    continue

                problems = [broken] if broken is not None else []
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    problems.append((ENCODING, None, utf8_problem(raw, e)))
                    bad_line = start + raw.count(b"\n", 0, e.start)
                    text = raw.decode("utf-8", "replace")
                row = None
                if quoted:
                    try:
                        row = next(csv.reader([text], delimiter=delim), [])
                    except csv.Error as e:
                        problems.append((MALFORMED, None, f"malformed CSV: {e}"))
                else:
                    line = text.rstrip("\r\n")
                    if "\r" in line:
                        problems.append((MALFORMED, None, "carriage return (\\r) inside the "
                                         "line: mixed line endings? save the file with \\n or "
                                         "\\r\\n line endings"))
                    else:
                        row = line.split(delim)
                if row is not None:
                    problems += check_record(row, text, spec, scan.missing if full else None)
                else:
                    row = [text.rstrip("\r\n")]
                for cls, column, message in problems:
                    scan.add(cls, bad_line if cls == ENCODING else start, column, message)
                if outputs is not None and problems and all(p[0] in outputs.tolerate
                                                            for p in problems):
                    first = problems[0]
                    outputs.quarantine(row, start, path, f"{first[1]}: {first[2]}"
                                       if first[1] else first[2])
                    scan.quarantined += 1
                    for cls, _, _ in problems:
                        scan.quarantined_by[cls] = scan.quarantined_by.get(cls, 0) + 1
                    if scan.quarantine_first is None:
                        scan.quarantine_first = Tally()
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


