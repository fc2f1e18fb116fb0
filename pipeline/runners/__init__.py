"""Runners: thin modules that set paths and orchestration, then call create_pipeline."""
import importlib

RUNNERS = {"local": "pipeline.runners.local", "beam": "pipeline.runners.beam"}


def get_runner(name: str):
    return importlib.import_module(RUNNERS[name])
