"""What every component's settings section shares.

A section is a frozen dataclass beside the component that uses it
(`components/model/settings.py`, `components/evaluator/settings.py`, ...).
It travels to the component as plain JSON (exec properties or
`custom_config`) and is rebuilt there with `from_dict`, so the defaults a
component falls back to are the dataclass's own, never a second copy.
`problems()` names what is wrong, `section.field: problem`; pipeline/config.py
composes the sections and raises the first problem as a `SettingsError`.
"""
import collections.abc
import dataclasses
import typing
from typing import Any, List, Mapping


class SettingsError(ValueError):
    """A setting is invalid; the message names the setting and the problem."""


def _coerce(tp, value):
    """`value` (plain JSON) as the annotated type `tp` needs: tuples, dicts, sections."""
    if value is None:
        return None
    origin = typing.get_origin(tp)
    if origin is typing.Union:  # Optional[X]
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _coerce(args[0], value) if len(args) == 1 else value
    if dataclasses.is_dataclass(tp) and isinstance(value, Mapping):
        return from_dict(tp, value)
    if origin is tuple and isinstance(value, (list, tuple)):
        args = typing.get_args(tp)
        inner = args[0] if args else Any
        return tuple(_coerce(inner, v) for v in value)
    if origin in (dict, collections.abc.Mapping) and isinstance(value, Mapping):
        return dict(value)
    return value


def from_dict(cls, values: Mapping[str, Any]):
    """An instance of the settings dataclass `cls` from JSON values.

    Missing keys take the dataclass defaults; unknown keys are a SettingsError
    naming them (a typo in a config file must not pass silently).
    """
    values = dict(values or {})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise SettingsError(f"unknown setting '{unknown[0]}' (valid: {', '.join(sorted(names))})")
    hints = typing.get_type_hints(cls)
    return cls(**{k: _coerce(hints[k], v) for k, v in values.items()})


def to_dict(section) -> dict:
    return dataclasses.asdict(section)


def first_problem(problems: List[str]) -> None:
    """Raises the first of `problems` as a SettingsError (nothing when empty)."""
    if problems:
        raise SettingsError(problems[0])
