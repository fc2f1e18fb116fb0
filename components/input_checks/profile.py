"""A profile of the first rows of an input: what role inference needs (components/columns.py).

Reads the first `sample_rows` data rows of the input's files (in order) with
pyarrow, every column as text, and counts per column: non-empty values,
distinct values, and how many parse as numbers, integers and ISO 8601
dates/times. Empty cells, `NA`, `null`, `nan` and the like are empty. Rows
with the wrong number of fields are skipped here (the checks report them);
a file pyarrow cannot read at all raises pyarrow's error. Memory holds the
sample only.
"""

from typing import Dict, List, Sequence

from components.columns import ColumnProfile
from components.input_checks.arrow_numbers import ARROW_NULLS
from components.input_checks.files import read_header_line

NUMBER = r"^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*$|^\s*[+-]?(?:inf|infinity)\s*$"
INTEGER = r"^\s*[+-]?\d+\s*$"
# 2024-03-05, 2024-03-05T14:23, 2024-03-05 14:23:11.123, ...Z, ...+01:00
DATETIME = (r"^\s*\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?"
            r"(?:Z|[+-]\d{2}:?\d{2})?)?\s*$")
EMPTY = ARROW_NULLS + ["nan", "NaN", "NAN", "-nan", "+nan", "#NA", "NaT"]
BLOCK_BYTES = 1 << 20
MAX_EXAMPLES = 3


def profile_csv(files: Sequence[str], sample_rows: int, delimiter: str
                ) -> Dict[str, ColumnProfile]:
    """{column: ColumnProfile} of the first `sample_rows` rows of `files`."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    names = list(read_header_line(files[0], delimiter).names)
    chunks: Dict[str, List] = {n: [] for n in names}
    rows = 0
    for path in files:
        if rows >= sample_rows:
            break
        reader = pcsv.open_csv(
            path,
            read_options=pcsv.ReadOptions(skip_rows=1, column_names=names,
                                          block_size=BLOCK_BYTES),
            parse_options=pcsv.ParseOptions(delimiter=delimiter, newlines_in_values=True,
                                            ignore_empty_lines=True,
                                            invalid_row_handler=lambda row: "skip"),
            convert_options=pcsv.ConvertOptions(
                column_types={n: pa.string() for n in names}, null_values=EMPTY,
                strings_can_be_null=True, quoted_strings_can_be_null=True))
        try:
            for batch in reader:
                take = min(batch.num_rows, sample_rows - rows)
                for i, n in enumerate(names):
                    chunks[n].append(batch.column(i).slice(0, take))
                rows += take
                if rows >= sample_rows:
                    break
        finally:
            reader.close()
    out = {}
    for n in names:
        col = pa.chunked_array(chunks[n], type=pa.string()) if chunks[n] else pa.chunked_array(
            [], type=pa.string())
        col = pc.utf8_trim_whitespace(col)
        present = pc.drop_null(pc.if_else(pc.equal(col, ""), pa.scalar(None, pa.string()), col))
        count = len(present)

        def matching(pattern: str) -> int:
            return int(pc.sum(pc.match_substring_regex(present, pattern)).as_py() or 0) \
                if count else 0

        examples = [v for v in pc.unique(present).slice(0, MAX_EXAMPLES).to_pylist()]
        out[n] = ColumnProfile(
            name=n, non_empty=count,
            distinct=int(pc.count_distinct(present).as_py()) if count else 0,
            numeric=matching(NUMBER), integer=matching(INTEGER), datetime=matching(DATETIME),
            examples=tuple(examples))
    return out


__all__ = ["profile_csv"]
