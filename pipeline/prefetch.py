"""Warm the imports later components need, in a background thread.

The Pusher's registry handoff imports MLflow (~2.5 s here) and the
Evaluator's report imports matplotlib (~1 s). A daemon thread imports them
while the DAG's first components run, mostly in native code (pyarrow, TFDV,
TensorFlow) that releases the GIL, so by the time the Evaluator and the Pusher
need them they are in `sys.modules`. Python's import lock makes a component
that gets there first simply wait for the same import. A failed import is
ignored here: the component that needs the module reports it.
"""
import importlib
import threading
from typing import Iterable

DEFAULT_MODULES = ("matplotlib.pyplot", "mlflow", "mlflow.pyfunc")


def _import_all(modules: Iterable[str]) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - best effort, see module docstring
            pass


def start(modules: Iterable[str] = DEFAULT_MODULES) -> threading.Thread:
    thread = threading.Thread(target=_import_all, args=(tuple(modules),),
                              name="import-prefetch", daemon=True)
    thread.start()
    return thread
