"""Defaults of batch scoring (importable without Beam, for help texts)."""

# Rows per chunk: one Beam element and one model call.
DEFAULT_ROWS_PER_CHUNK = 32768

# What `score` does with a row it cannot score: "fail" (exit 2, nothing written) or
# "skip" (the row goes to the rejects file beside the output, the rest is scored).
ON_BAD_ROWS = ("fail", "skip")
DEFAULT_ON_BAD_ROWS = "fail"
REJECTS_SUFFIX = ".rejects"


def rejects_path(output_csv: str) -> str:
    """Where `--on-bad-rows skip` writes the rows it set aside: scored.csv -> scored.rejects.csv."""
    import os

    base, ext = os.path.splitext(output_csv)
    return base + REJECTS_SUFFIX + (ext or ".csv")
