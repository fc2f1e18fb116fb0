"""The fast pass: pyarrow's streaming CSV reader flags the rows the exact pass must look at."""
from typing import Dict, Optional, Tuple

import numpy as np

from components.input_checks.arrow_numbers import ARROW_NULLS
from components.input_checks.cells import Spec, label_problem

ARROW_BLOCK_BYTES = 4 << 20



def arrow_scan(path: str, spec: Spec) -> Optional[Tuple[int, np.ndarray, Dict[str, int]]]:
    """Fast pass: (data rows, sorted 0-based indices of rows to re-check, empty
    number cells per column), or None when pyarrow cannot read the file (the
    Python pass will say why). Empty and `nan` number cells are missing values:
    flagged unless `spec.missing_ok`; infinities are always flagged."""
    try:
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.csv as pcsv
    except ImportError:  # pragma: no cover - pyarrow ships with TFX
        return None
    names = [f"c{i}" for i in range(spec.ncols)]
    types = {names[i]: pa.float64() for i, _ in spec.features}
    types.update({names[i]: pa.string() for i, _ in spec.texts})  # UTF-8 is validated
    if spec.label is not None:
        types[names[spec.label[0]]] = pa.string()
    rows, flagged, missing = 0, [], {name: 0 for _, name in spec.features}
    reader = None
    try:
        reader = pcsv.open_csv(
            path,
            read_options=pcsv.ReadOptions(skip_rows=1, column_names=names,
                                          block_size=ARROW_BLOCK_BYTES),
            parse_options=pcsv.ParseOptions(delimiter=spec.delimiter, newlines_in_values=True,
                                            ignore_empty_lines=True),
            convert_options=pcsv.ConvertOptions(column_types=types, null_values=ARROW_NULLS,
                                                strings_can_be_null=False,
                                                quoted_strings_can_be_null=True))
        for batch in reader:
            n = batch.num_rows
            bad = np.zeros(n, dtype=bool)
            for i, name in spec.features:
                v = batch.column(i).to_numpy(zero_copy_only=False)  # nulls -> nan
                absent = np.isnan(v)
                missing[name] += int(absent.sum())
                bad |= np.isinf(v)
                if not spec.missing_ok:
                    bad |= absent
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
    lines = count_lines(path) - 1
    if rows > lines or (spec.single_line and rows < lines):
        # More records than lines: pyarrow split lines on a lone '\r', which
        # TFX does not. Fewer, where records must fit on a line: a value
        # holds a line break (or there are blank lines). The Python pass says.
        return None
    return (rows, (np.concatenate(flagged) if flagged else np.empty(0, dtype=np.int64)),
            missing)


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


