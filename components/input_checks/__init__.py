"""Input CSV checks, run before any pipeline work (by `run`, `score`, `drift` and Airflow).

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

Modules, by concern: `files` (paths, encoding, header), `cells` (what a cell
and a record must look like), `problems` (problem classes and their tallies),
`fast_scan` (the pyarrow pass), `exact_scan` (the Python pass), `quarantine`
(the rows set aside and the clean copies), `check` (`check_csv`, the entry).
"""
from components.errors import InputError
from components.input_checks.check import MAX_QUARANTINE_FRACTION, MODES, CsvInfo, check_csv
from components.input_checks.files import read_header, resolve_csv_files
from components.input_checks.quarantine import (CLEAN_DIR, QUARANTINE_FILE, SOURCE_FILE_COLUMN,
                                                SOURCE_LINE_COLUMN)

__all__ = [
    "InputError", "CsvInfo", "resolve_csv_files", "read_header", "check_csv",
    "QUARANTINE_FILE", "CLEAN_DIR", "SOURCE_LINE_COLUMN", "SOURCE_FILE_COLUMN",
    "MAX_QUARANTINE_FRACTION", "MODES",
]
