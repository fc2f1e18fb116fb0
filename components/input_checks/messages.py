"""How the input checks quote values and names in their one-line messages."""
from typing import Sequence

SHOW_CHARS = 40


def show(value: str) -> str:
    """A value for a message: quoted, escaped, truncated."""
    if len(value) > SHOW_CHARS:
        value = value[:SHOW_CHARS - 3] + "..."
    return repr(value)


def name_list(names: Sequence[str], quote: bool = True, limit: int = 12) -> str:
    shown = [repr(n) if quote else n for n in names[:limit]]
    more = f", ... (+{len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(shown) + more


def utf8_problem(raw: bytes, e: UnicodeDecodeError) -> str:
    return (f"not valid UTF-8 (byte 0x{raw[e.start]:02x} at position {e.start + 1}); "
            f"save the file as UTF-8")
