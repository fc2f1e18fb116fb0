"""The error a user can act on: one line naming the file, the row, the column and the problem.

Raised by the input checks (`components/input_checks`), by the model-directory
checks (`components/model/layout.py`) and by the span planning; the CLI prints
`error: <str(e)>` and exits 2. Importable without TensorFlow or TFX.
"""
import os
from typing import Optional, Sequence

MAX_EXAMPLES = 5  # example rows an error keeps


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
