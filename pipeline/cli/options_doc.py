"""docs/options.md from the command-line flags themselves (`make docs` writes it).

Every flag of `run`, `score`, `compile` and `drift`, with the default its
help text shows (read from the config dataclasses) and the config field it
sets, so the table and `--help` cannot disagree; tests/test_architecture.py
checks the committed file against this output.
"""
import argparse
import sys
from typing import List

HEADER = """# Every option

Generated from the parser by `make docs` (pipeline/cli/options_doc.py); `--help` shows the
same text. A flag that sets a config field names it: the same setting in a `--config FILE`
(JSON, same nesting) is `{"model": {"epochs": 20}}` for `model.epochs`. Settings are applied
in the order defaults < `--preset` < `--config FILE` < flags.
"""


def _rows(parser: argparse.ArgumentParser) -> List[str]:
    rows = ["| option | meaning |", "|---|---|"]
    for action in parser._actions:  # argparse keeps no public list
        if not action.option_strings or action.dest == "help":
            continue
        flag = ", ".join(action.option_strings)
        if action.nargs != 0:
            flag += f" {action.metavar or action.dest.upper()}"
        text = " ".join((action.help or "").split()).replace("|", "\\|")
        rows.append(f"| `{flag}` | {text} |")
    return rows


def render() -> str:
    from pipeline.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    parts = [HEADER]
    for name, sub in commands.items():
        parts.append(f"## `anomaly-pipeline {name}`\n\n{' '.join(sub.description.split())}\n")
        parts.append("\n".join(_rows(sub)) + "\n")
    return "\n".join(parts)


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
