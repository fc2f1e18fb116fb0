"""The problem classes a check reports, and how they are counted per file."""
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional

from components.errors import MAX_EXAMPLES, InputError

# Problem classes, in tie-break order (same first row: the earlier one wins).
ENCODING = "encoding"
MALFORMED = "malformed"
UNCLOSED = "unclosed_quote"  # the rest of the file cannot be read: never set aside
RAGGED = "ragged"
NON_NUMERIC = "non_numeric"
BAD_LABEL = "bad_label"
MISSING = "missing"
NON_FINITE = "non_finite"
PRIORITY = {c: i for i, c in enumerate(
    (ENCODING, MALFORMED, UNCLOSED, RAGGED, NON_NUMERIC, BAD_LABEL, MISSING, NON_FINITE))}
# What train mode may set aside (quarantine) instead of failing.
TOLERABLE = frozenset({MISSING, NON_FINITE})
# What `score --on-bad-rows skip` may set aside (rejects): any problem of one record. A
# file-level problem (header, encoding of the header, an unbalanced quote that swallows
# the rest of the file) still stops it.
SKIPPABLE = frozenset({ENCODING, MALFORMED, RAGGED, NON_NUMERIC, BAD_LABEL, MISSING,
                       NON_FINITE})
# Why a record was set aside, in words (the rejects file's `_problem` column).
PROBLEM_WORDS = {ENCODING: "not valid UTF-8", MALFORMED: "malformed record",
                 RAGGED: "wrong number of fields", NON_NUMERIC: "non-numeric value",
                 BAD_LABEL: "bad label", MISSING: "missing value", NON_FINITE: "non-finite value"}
NUMBERS_HINT = ("; if a column is not a number, declare it with --categorical-columns or "
                "--passthrough-columns")


@dataclass
class Tally:
    """Count, first occurrence and example rows of one problem class."""

    count: int = 0
    line: int = 0
    column: Optional[str] = None
    text: str = ""
    examples: List[int] = field(default_factory=list)
    last: int = -1  # a record with the problem in several columns counts once

    def add(self, line: int, column: Optional[str], text: str) -> None:
        if line == self.last:
            return
        if not self.count:
            self.line, self.column, self.text = line, column, text
        self.count += 1
        self.last = line
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(line)


@dataclass
class Scan:
    """What one pass over one file found."""

    path: str
    rows: int = 0
    tallies: Dict[str, Tally] = field(default_factory=dict)
    quarantined: int = 0
    quarantined_by: Dict[str, int] = field(default_factory=dict)
    quarantine_first: Optional[Tally] = None  # first quarantined problem + example lines
    # Number columns with non-numeric cells, each with its own tally (one message names all).
    non_numeric: Dict[str, Tally] = field(default_factory=dict)
    missing: Dict[str, int] = field(default_factory=dict)  # empty number cells per column

    def add(self, cls: str, line: int, column: Optional[str], text: str) -> None:
        self.tallies.setdefault(cls, Tally()).add(line, column, text)
        if cls == NON_NUMERIC and column is not None:
            self.non_numeric.setdefault(column, Tally()).add(line, column, text)

    def first_error(self, tolerate: Iterable[str]) -> Optional[InputError]:
        tolerate = frozenset(tolerate)
        fatal = [(t.line, PRIORITY[c], c, t) for c, t in self.tallies.items()
                 if t.count and c not in tolerate]
        if not fatal:
            return None
        _, _, cls, t = min(fatal, key=lambda x: (x[0], x[1]))
        if cls == NON_NUMERIC and len(self.non_numeric) > 1:
            return self._columns_error(t)
        text = t.text + (NUMBERS_HINT if cls == NON_NUMERIC else "")
        return InputError(self.path, t.line, t.column, text, t.count, t.examples)

    def _columns_error(self, first: Tally) -> InputError:
        """Every number column with cells that are not numbers, in one line."""
        parts = []
        for name, t in sorted(self.non_numeric.items(), key=lambda kv: kv[1].line):
            value = t.text.rpartition(" ")[2]
            parts.append(f"{name} (row {t.line}: {value}" +
                         (f", {t.count} rows)" if t.count > 1 else ")"))
        return InputError(self.path, first.line, None,
                          f"{len(parts)} columns cannot be read as numbers: {', '.join(parts)}"
                          f"{NUMBERS_HINT}", first.count, first.examples)


