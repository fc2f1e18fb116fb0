"""The problem classes a check reports, and how they are counted per file."""
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional

from components.errors import MAX_EXAMPLES, InputError

# Problem classes, in tie-break order (same first row: the earlier one wins).
ENCODING = "encoding"
MALFORMED = "malformed"
RAGGED = "ragged"
NON_NUMERIC = "non_numeric"
BAD_LABEL = "bad_label"
MISSING = "missing"
NON_FINITE = "non_finite"
PRIORITY = {c: i for i, c in enumerate(
    (ENCODING, MALFORMED, RAGGED, NON_NUMERIC, BAD_LABEL, MISSING, NON_FINITE))}
# What train mode may set aside (quarantine) instead of failing.
TOLERABLE = frozenset({MISSING, NON_FINITE})


@dataclass
class Tally:
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
class Scan:
    """What one pass over one file found."""

    path: str
    rows: int = 0
    tallies: Dict[str, Tally] = field(default_factory=dict)
    quarantined: int = 0
    quarantined_by: Dict[str, int] = field(default_factory=dict)
    quarantine_first: Optional[Tally] = None  # first quarantined problem + example lines

    def add(self, cls: str, line: int, column: Optional[str], text: str) -> None:
        self.tallies.setdefault(cls, Tally()).add(line, column, text)

    def first_error(self, tolerate: Iterable[str]) -> Optional[InputError]:
        tolerate = frozenset(tolerate)
        fatal = [(t.line, PRIORITY[c], t) for c, t in self.tallies.items()
                 if t.count and c not in tolerate]
        if not fatal:
            return None
        _, _, t = min(fatal, key=lambda x: (x[0], x[1]))
        return InputError(self.path, t.line, t.column, t.text, t.count, t.examples)


