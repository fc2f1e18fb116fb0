"""Process-wide settings for Beam's in-process DirectRunner, applied by the runners.

The embedded worker's state cache weighs every cached side input with
`objsize.get_deep_size`, which walks the globals of every loaded module on
each call; with TensorFlow loaded that is ~0.1 s per side-input read, and
TFT's analyzers read side inputs all the time (6 s of Transform's 25 s on a
million rows, bench/perf.py). With the cache off, side inputs are read from
the runner's in-memory state directly, which is what the cache would hold.
"""

_applied = False


def tune_in_process_runner() -> None:
    global _applied
    if _applied:
        return
    from apache_beam.runners.portability.fn_api_runner import worker_handlers

    worker_handlers.STATE_CACHE_SIZE_MB = 0
    _applied = True
