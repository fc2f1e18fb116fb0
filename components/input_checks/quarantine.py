"""The rows train mode sets aside (`quarantined.csv`) and the clean copies of the input."""
import csv
import os
import shutil
from typing import IO, Any, FrozenSet, List, Optional, Sequence

from components.errors import InputError
from components.input_checks.problems import TOLERABLE

QUARANTINE_FILE = "quarantined.csv"
CLEAN_DIR = "clean"
SOURCE_LINE_COLUMN = "_source_line"
SOURCE_FILE_COLUMN = "_source_file"
PROBLEM_COLUMN = "_problem"


class QuarantineOutputs:
    """The quarantine file and the clean copies, written during the Python pass."""

    def __init__(self, quarantine_dir: str, files: Sequence[str], columns: Sequence[str],
                 tolerate: FrozenSet[str] = TOLERABLE, with_problem: bool = False):
        """`tolerate`: the problem classes a record may be set aside for;
        `with_problem`: the quarantine file says why (`_problem`: the first
        problem's line, e.g. `n: non-numeric value 'x'`)."""
        self.tolerate = frozenset(tolerate)
        self.with_problem = with_problem
        self.dir = os.fspath(quarantine_dir)
        self.clean_dir = os.path.join(self.dir, CLEAN_DIR)
        self.quarantine_path = os.path.join(self.dir, QUARANTINE_FILE)
        self.multi = len(files) > 1
        self.header = list(columns) + [SOURCE_LINE_COLUMN] + (
            [SOURCE_FILE_COLUMN] if self.multi else []) + (
            [PROBLEM_COLUMN] if with_problem else [])
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

    def quarantine(self, row: List[str], line: int, src: str, problem: str = "") -> None:
        if self._q is None:
            os.makedirs(self.dir, exist_ok=True)
            self._q = open(self.quarantine_path, "w", encoding="utf-8", newline="")
            self._qw = csv.writer(self._q, lineterminator="\n")
            self._qw.writerow(self.header)
            self._q.flush()
            self._header_end = self._q.tell()
        self._qw.writerow(row + [line] + ([os.path.basename(src)] if self.multi else []) +
                          ([problem] if self.with_problem else []))

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


