"""The Trainer's module code (the stock TFX Trainer runs `components.trainer.run_fn`).

run.py   run_fn: unpack fn_args, fit, export
fit.py   the autoencoder(s), model selection, row errors
data.py  raw examples -> z-scored rows (in memory or streamed)
"""
from components.trainer.run import run_fn

__all__ = ["run_fn"]
