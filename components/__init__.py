"""What runs inside the DAG's components (pipeline/ builds and runs the DAG).

Never imports `pipeline`: the dependency points one way (`.importlinter`).
docs/architecture.md lists every module.
"""
