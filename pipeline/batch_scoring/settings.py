"""Defaults of batch scoring (importable without Beam, for help texts)."""

# Rows per chunk: one Beam element and one model call.
DEFAULT_ROWS_PER_CHUNK = 32768
