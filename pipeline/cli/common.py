"""What the commands share: exit codes, the parser, flags that set a config field.

A `SettingFlag` ties a command-line flag to one dotted field of
pipeline/config.py: its help text shows that field's default (read from the
dataclass, never repeated here), the flags given become the nested
`overrides` dict that `config.build_config` merges last, and docs/options.md
is generated from the same list (pipeline/cli/options_doc.py).
"""
import argparse
import sys
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

from pipeline import config as config_lib

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2
_UNSET = object()


class UsageError(Exception):
    """Bad input or usage: reported as one line, exit 2."""


def expected_error(e: BaseException) -> bool:
    """Bad usage, settings or input, or data the data gate rejected: main() reports it
    as one line with exit 2, and the log records it without a traceback."""
    from components.data_gate.errors import find_in_chain
    from components.errors import InputError
    from components.settings import SettingsError

    return (isinstance(e, (UsageError, SettingsError, InputError))
            or (isinstance(e, Exception) and find_in_chain(e) is not None))


def add_verbose(parser) -> None:
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show the TensorFlow, TFX, Beam and absl logs live on stderr too "
                             "(by default they only go to the log file the JSON line names)")


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2, as for every other bad input
        self.print_usage(sys.stderr)
        print(f"error: {message}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def kv_number(text: str):
    """NAME=VALUE with a numeric value (`--threshold-param k=3`)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got '{text}'")
    k, v = text.split("=", 1)
    try:
        return k.strip(), float(v)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}': value must be a number") from None


def int_list(text: str) -> List[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got '{text}'")


def name_list(text: str) -> List[str]:
    """Comma-separated column names (`--categorical-columns a,b`)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"expected comma-separated column names, got '{text}'")
    return names


def delimiter(text: str) -> str:
    """One character; `tab` or `\\t` for a tab."""
    value = "\t" if text in ("tab", "\\t", "\t") else text
    if len(value) != 1:
        raise argparse.ArgumentTypeError(f"expected one character (or 'tab'), got '{text}'")
    return value


def positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got '{text}'") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def describe_default(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) if value else "none"
    return str(value)


@dataclass(frozen=True)
class SettingFlag:
    """A flag that sets the config field `setting` (dotted, e.g. "model.epochs").

    `store`: for a switch (no value), the value the field takes when it is
    given. `convert`: turns the parsed value into the field's value.
    `default_text`: how the default reads where the field's value does not say
    it well (e.g. `null` meaning "by data size").
    """

    flag: str
    setting: str
    help: str
    type: Optional[Callable] = None
    choices: Optional[Sequence[str]] = None
    metavar: Optional[str] = None
    store: Any = _UNSET
    action: Optional[str] = None
    convert: Optional[Callable[[Any], Any]] = None
    default_text: Optional[str] = None
    required: bool = False

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def is_switch(self) -> bool:
        return self.store is not _UNSET

    def default(self) -> str:
        if self.default_text is not None:
            return self.default_text
        if self.is_switch:
            return "off"
        return describe_default(config_lib.default(self.setting))

    def add_to(self, group) -> None:
        text = (f"{self.help} (required)" if self.required
                else f"{self.help} (default: {self.default()}; config: {self.setting})")
        if self.is_switch:
            group.add_argument(self.flag, dest=self.dest, action="store_true", default=None,
                               help=text)
        elif self.action == "append":
            group.add_argument(self.flag, dest=self.dest, action="append", default=[],
                               type=self.type, metavar=self.metavar, help=text)
        else:
            group.add_argument(self.flag, dest=self.dest, type=self.type, choices=self.choices,
                               metavar=self.metavar, default=None, required=self.required,
                               help=text)

    def given(self, args: argparse.Namespace) -> Any:
        """The field's value from `args`, or _UNSET when the flag was not given."""
        value = getattr(args, self.dest, None)
        if value is None or (self.action == "append" and not value):
            return _UNSET
        if self.is_switch:
            return self.store
        return self.convert(value) if self.convert else value


def overrides(args: argparse.Namespace, flags: Iterable[SettingFlag]) -> Dict[str, Any]:
    """The given flags as the nested overrides dict of `config.build_config`."""
    out: Dict[str, Any] = {}
    for f in flags:
        value = f.given(args)
        if value is _UNSET:
            continue
        *sections, name = f.setting.split(".")
        node = out
        for s in sections:
            node = node.setdefault(s, {})
        node[name] = value
    return out


def add_flags(group, flags: Iterable[SettingFlag]) -> None:
    for f in flags:
        f.add_to(group)


BEAM_ARG = SettingFlag(
    "--beam-arg", "beam_args", "Beam pipeline argument, e.g. --beam-arg=--runner=PortableRunner "
    "(repeatable)", action="append", metavar="ARG", convert=list)
CONFIG_FILE_HELP = ("JSON settings file, nested like pipeline/config.py (data, model, threshold, "
                    "evaluation, drift, ...); flags override it")
SPAN_FLAGS = (
    SettingFlag("--window", "data.window", "with --data a directory of span folders: Transform "
                "and the Trainer read the newest K spans", type=positive_int, metavar="K"),
    SettingFlag("--span-pattern", "data.span_pattern", "span folders under --data as "
                "CsvExampleGen reads them, e.g. 'span-{SPAN}/*.csv' or '{YYYY}-{MM}-{DD}/*.csv'",
                metavar="PATTERN", default_text="detected from the folder names"),
)
COLUMN_FLAGS = (
    SettingFlag("--categorical-columns", "columns.categorical", "columns to treat as "
                "categories (one-hot through TFT's vocabulary), whatever the rules infer",
                type=name_list, metavar="A,B", default_text="inferred"),
    SettingFlag("--passthrough-columns", "columns.passthrough", "columns that are never a "
                "model input (ids, keys, timestamps, text): copied to every output",
                type=name_list, metavar="A,B", default_text="inferred"),
    SettingFlag("--numeric-columns", "columns.numeric", "columns to treat as numbers "
                "(z-scored), whatever the rules infer", type=name_list, metavar="A,B",
                default_text="inferred"),
    SettingFlag("--time-features", "columns.time_features", "ISO 8601 timestamp columns that "
                "also feed hour-of-day and day-of-week inputs", type=name_list,
                metavar="COL"),
    SettingFlag("--max-categories", "columns.max_categories", "a text column with at most this "
                "many distinct values is categorical; also its vocabulary's size", type=int,
                metavar="N"),
    SettingFlag("--missing", "columns.missing", "empty numeric cells: impute (the train mean, "
                "plus a missing-indicator input) or quarantine (set the rows aside)",
                choices=("impute", "quarantine")),
    SettingFlag("--delimiter", "data.delimiter", "the CSV delimiter ('tab' for a tab)",
                type=delimiter, metavar="CHAR", default_text="detected: ',', ';', tab or '|'"),
)
METADATA_MYSQL = SettingFlag(
    "--metadata-mysql", "metadata_mysql", "ML Metadata in MySQL instead of "
    "<output>/metadata.sqlite; account from $ANOMALY_PIPELINE_MYSQL_USER and "
    "$ANOMALY_PIPELINE_MYSQL_PASSWORD", metavar="HOST[:PORT]/DB")
