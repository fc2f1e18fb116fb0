"""The DAG, its settings, its runners, the command line and batch scoring.

Uses `components/`, never the reverse. docs/architecture.md lists every module.
"""
