"""The fast pass: pyarrow's streaming CSV reader flags the rows the exact pass must look at."""
from typing import Optional, Tuple

import numpy as np

from components.input_checks.cells import INT64_BOUND, Spec, label_problem

ARROW_BLOCK_BYTES = 4 << 20
# The missing-value tokens pyarrow can recognise itself (exact, case-sensitive matches).
ARROW_NULLS = ["", "NA", "N/A", "#N/A", "NULL", "null", "Null", "None", "none", "NONE",
               "na", "n/a"]


def arrow_scan(path: str, spec: Spec) -> Optional[Tuple[int, np.ndarray]]:
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
                                          block_size=ARROW_BLOCK_BYTES),
            parse_options=pcsv.ParseOptions(delimiter=",", newlines_in_values=True,
                                            ignore_empty_lines=True),
            convert_options=pcsv.ConvertOptions(column_types=types, null_values=ARROW_NULLS,
                                                strings_can_be_null=False,
                                                quoted_strings_can_be_null=True))
        for batch in reader:
            n = batch.num_rows
            bad = np.zeros(n, dtype=bool)
            for i, _ in spec.features:
                v = batch.column(i).to_numpy(zero_copy_only=False)  # nulls -> nan
                with np.errstate(invalid="ignore"):
                    bad |= ~(np.abs(v) < INT64_BOUND)  # nan, inf, huge
            if spec.label is not None:
                col = batch.column(spec.label[0])
                if col.null_count:
                    bad |= col.is_null().to_numpy(zero_copy_only=False)
                wrong = [u for u in pc.unique(col).to_pylist()
                         if u is not None and u not in ("0", "1") and label_problem(u)]
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
    if rows > count_lines(path) - 1:
        # More records than lines: pyarrow split lines on a lone '\r', which
        # TFX does not. Let the Python pass say where.
        return None
    return rows, (np.concatenate(flagged) if flagged else np.empty(0, dtype=np.int64))


def count_lines(path: str) -> int:
    """Physical lines in `path` (a last line without a newline counts)."""
    lines, last = 0, b"\n"
    with open(path, "rb") as f:
        while True:
            chunk = f.read(ARROW_BLOCK_BYTES)
            if not chunk:
                break
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (last != b"\n")


