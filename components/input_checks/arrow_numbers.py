"""Numbers as the input checks read them, for pyarrow readers (ExampleGen, batch scoring).

pyarrow's CSV reader matches missing-value tokens exactly and refuses `+3`;
the checks (cells.py) trim whitespace, compare tokens lower-cased and accept
a leading `+`. `ARROW_NULLS` gives pyarrow the tokens in every casing (the
fast path); `numbers_from_text` converts columns read as text where the
fast path failed, so every reader agrees with the checks.
"""
from typing import Dict, List

from components.input_checks.cells import NA_TOKENS

MISSING_NUMBERS = frozenset(NA_TOKENS | {"", "nan", "+nan", "-nan"})


def _every_casing(token: str) -> List[str]:
    out = [""]
    for ch in token:
        out = [o + c for o in out for c in sorted({ch.lower(), ch.upper()})]
    return out


ARROW_NULLS = [""] + [v for t in sorted(NA_TOKENS) for v in _every_casing(t)]


class NumberError(ValueError):
    """A cell that is not a number after all (the checks refuse these first)."""


def numbers_from_text(block, types_: Dict[str, "object"]):
    """`block` (a pyarrow RecordBatch) with its `types_` columns, read as text, converted
    to those types (float64, or int64 for a 0/1 label written `1.0`): whitespace
    trimmed, missing tokens in any case as nulls, a leading `+` dropped."""
    import pyarrow as pa
    import pyarrow.compute as pc

    nulls = pa.array(sorted(MISSING_NUMBERS))
    arrays = []
    for name, col in zip(block.schema.names, block.columns):
        if name in types_:
            text = pc.utf8_trim_whitespace(col)
            text = pc.if_else(pc.is_in(pc.utf8_lower(text), value_set=nulls),
                              pa.scalar(None, pa.string()), text)
            text = pc.replace_substring_regex(text, r"^\+", "")
            try:
                col = pc.cast(text, pa.float64())
            except pa.ArrowInvalid as e:
                raise NumberError(f"column {name}: {str(e).splitlines()[0]}") from None
            if types_[name] == pa.int64():
                col = pc.cast(col, pa.int64())
        arrays.append(col)
    return pa.RecordBatch.from_arrays(arrays, names=block.schema.names)
