"""Which column is what: the roles, the stated rules that infer them, and the `columns` settings.

Every column of an input table has one role:

    numeric      z-scored model input; an empty cell is imputed (the train mean)
                 and, when the column had empty cells, a missing-indicator is a
                 model input too
    categorical  model input through TFT's vocabulary (top `max_categories`
                 values seen at least `min_frequency` times; rarer and unseen
                 values share an out-of-vocabulary slot), one-hot in the model;
                 an empty cell is the category "__missing__"
    passthrough  ids, keys, timestamps, free text: never a model input, copied to
                 every output (`score` writes it unchanged); a timestamp listed in
                 `time_features` also feeds hour-of-day and day-of-week inputs
    label        1 = anomaly, 0 = normal (`data.label_column`)

`infer_roles` applies the rules below to a profile of the first
`sample_rows` rows (components/input_checks/profile.py); `numeric`,
`categorical` and `passthrough` in the settings override them per column.

    1. a column whose every non-empty value parses as a date/time (ISO 8601,
       e.g. 2024-03-05T14:23:11Z or 2024-03-05) is passthrough;
    2. a column of numbers (at least `numeric_share` of its non-empty values) is
       numeric, unless its values are integers that are (almost) all distinct
       (`id_ratio` of the non-empty rows, at least `min_id_rows` of them): an id,
       passthrough;
    3. any other column with (almost) all values distinct is an id, passthrough;
    4. any other column with at most `max_categories` distinct values is categorical;
    5. the rest (many distinct strings) is passthrough, with a hint to declare it.

`ColumnRoles` travels as JSON (`{"columns": {...}}`) in the exec properties
or `custom_config` of ExampleGen, Transform, the Trainer, the AnomalyEvaluator
and the DataGate, so every component sees the same roles. With no roles at all
(an older config), every column but the label is numeric.
"""
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from components.settings import SettingsError

TRANSFORMED_SUFFIX = "_xf"
INDICATOR_SUFFIX = "__missing"
MISSING_CATEGORY = "__missing__"
TIME_PARTS = ("hour_sin", "hour_cos", "weekday_sin", "weekday_cos")
OOV_BUCKETS = 1  # the vocabulary index every rare or unseen category shares
MISSING_VALUES = ("impute", "quarantine")
NUMERIC, CATEGORICAL, PASSTHROUGH, LABEL = "numeric", "categorical", "passthrough", "label"


@dataclass(frozen=True)
class ColumnSettings:
    """The `columns` settings section: role overrides and the inference rules' limits."""

    numeric: Tuple[str, ...] = ()
    categorical: Tuple[str, ...] = ()
    passthrough: Tuple[str, ...] = ()
    # Timestamp columns (passthrough) that also feed hour-of-day and day-of-week
    # model inputs (sin/cos pairs).
    time_features: Tuple[str, ...] = ()
    # Rule 4: a string column with at most this many distinct values in the
    # sample is categorical; it is also the vocabulary's size (top-k).
    max_categories: int = 50
    # A category needs this many rows of the train split for a slot of its own.
    min_frequency: int = 5
    # Rules 2-3: distinct / non-empty values at least this (and at least
    # `min_id_rows` non-empty rows) make a column an identifier.
    id_ratio: float = 0.95
    min_id_rows: int = 20
    # Rule 2: a column is numbers when at least this share of its non-empty
    # values are; its other cells are then reported as errors.
    numeric_share: float = 0.95
    # Rows read to infer the roles (from the start of the input).
    sample_rows: int = 100_000
    # Empty numeric cells: "impute" (train mean + missing-indicator, the
    # default) or "quarantine" (rows set aside, as before roles existed).
    missing: str = "impute"

    def problems(self) -> List[str]:
        checks = [
            (self.max_categories >= 2, "columns.max_categories must be >= 2"),
            (self.min_frequency >= 1, "columns.min_frequency must be >= 1"),
            (0 < self.id_ratio <= 1, "columns.id_ratio must be in (0, 1]"),
            (self.min_id_rows >= 2, "columns.min_id_rows must be >= 2"),
            (0 < self.numeric_share <= 1, "columns.numeric_share must be in (0, 1]"),
            (self.sample_rows >= 100, "columns.sample_rows must be >= 100"),
            (self.missing in MISSING_VALUES,
             f"columns.missing must be one of {', '.join(MISSING_VALUES)}"),
        ]
        out = [message for ok, message in checks if not ok]
        forced = [("numeric", self.numeric), ("categorical", self.categorical),
                  ("passthrough", self.passthrough)]
        for i, (a, names_a) in enumerate(forced):
            for b, names_b in forced[i + 1:]:
                both = sorted(set(names_a) & set(names_b))
                if both:
                    out.append(f"columns: {both[0]} is listed as both {a} and {b}")
        return out


@dataclass(frozen=True)
class ColumnRoles:
    """The role of every column (see the module docstring), and why.

    `indicators`: the numeric columns that get a missing-indicator input (those
    with empty cells in the training input). `why`: column -> the rule that set
    its role.
    """

    label: Optional[str] = None
    numeric: Tuple[str, ...] = ()
    categorical: Tuple[str, ...] = ()
    passthrough: Tuple[str, ...] = ()
    time_features: Tuple[str, ...] = ()
    indicators: Tuple[str, ...] = ()
    max_categories: int = ColumnSettings.max_categories
    min_frequency: int = ColumnSettings.min_frequency
    why: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Optional[Mapping[str, Any]]) -> "ColumnRoles":
        values = dict(values or {})
        tuples = ("numeric", "categorical", "passthrough", "time_features", "indicators")
        return cls(label=values.get("label") or None,
                   **{k: tuple(values.get(k) or ()) for k in tuples},
                   max_categories=int(values.get("max_categories", cls.max_categories)),
                   min_frequency=int(values.get("min_frequency", cls.min_frequency)),
                   why=dict(values.get("why") or {}))

    @property
    def has_roles(self) -> bool:
        return bool(self.numeric or self.categorical or self.passthrough)

    def numeric_keys(self, all_keys: Iterable[str]) -> List[str]:
        """The numeric model inputs; without roles, every key but the label."""
        if self.has_roles:
            return list(self.numeric)
        return sorted(k for k in all_keys if k != self.label)

    def feature_keys(self, all_keys: Iterable[str]) -> List[str]:
        """Every raw column the model reads: numeric, categorical, time-feature columns."""
        return self.numeric_keys(all_keys) + list(self.categorical) + list(self.time_features)

    def role_of(self, column: str) -> str:
        if column == self.label:
            return LABEL
        for role in (NUMERIC, CATEGORICAL, PASSTHROUGH):
            if column in getattr(self, role):
                return role
        return NUMERIC if not self.has_roles else PASSTHROUGH

    def string_columns(self) -> List[str]:
        """Columns stored and served as strings (bytes features)."""
        return list(self.categorical) + list(self.passthrough)

    def summary(self) -> Dict[str, Any]:
        """The run summary's `columns`."""
        return {"numeric": list(self.numeric), "categorical": list(self.categorical),
                "passthrough": list(self.passthrough), "time_features": list(self.time_features),
                "missing_indicators": list(self.indicators), "label": self.label,
                "why": dict(self.why)}


def transformed_name(key: str) -> str:
    return key + TRANSFORMED_SUFFIX


def indicator_name(key: str) -> str:
    return key + INDICATOR_SUFFIX


def time_part_name(key: str, part: str) -> str:
    return f"{key}__{part}"


def vocabulary_name(key: str) -> str:
    """TFT's vocabulary file of a categorical column."""
    return f"vocabulary_{key}"


def component_config(roles: ColumnRoles, **sections: Any) -> Dict[str, Any]:
    """The JSON-able config a component receives: its settings sections + `columns`."""
    return {"columns": roles.to_dict(), **sections}


# --------------------------------------------------------------------------- inference


@dataclass(frozen=True)
class ColumnProfile:
    """What the sample says about one column (components/input_checks/profile.py)."""

    name: str
    non_empty: int = 0
    distinct: int = 0
    numeric: int = 0        # non-empty values that parse as numbers
    integer: int = 0        # ... as integers
    datetime: int = 0       # ... as ISO 8601 dates/times
    examples: Tuple[str, ...] = ()


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _infer_one(p: ColumnProfile, s: ColumnSettings) -> Tuple[str, str]:
    """(role, why) of one column by the stated rules."""
    if p.non_empty == 0:
        return PASSTHROUGH, "no values in the sample"
    distinct = f"{_plural(p.distinct, 'distinct value')} in {_plural(p.non_empty, 'row')}"
    id_like = p.non_empty >= s.min_id_rows and p.distinct >= s.id_ratio * p.non_empty
    if p.datetime == p.non_empty:
        return PASSTHROUGH, ("date/time values (ISO 8601); --time-features adds hour-of-day "
                             "and day-of-week inputs")
    if p.numeric >= s.numeric_share * p.non_empty:
        if p.integer == p.numeric and id_like:
            return PASSTHROUGH, f"integer identifier: {distinct}"
        odd = p.non_empty - p.numeric
        return NUMERIC, "numbers" + (f" ({_plural(odd, 'non-numeric cell')}, reported as "
                                     f"errors)" if odd else "")
    if id_like:
        return PASSTHROUGH, f"identifier: {distinct}"
    if p.distinct <= s.max_categories:
        return CATEGORICAL, f"{distinct} (<= columns.max_categories={s.max_categories})"
    return PASSTHROUGH, (f"text with {distinct} (> columns.max_categories={s.max_categories}); "
                         f"--categorical-columns makes it categorical")


def infer_roles(columns: Sequence[str], label: Optional[str], settings: ColumnSettings,
                profiles: Mapping[str, ColumnProfile]) -> ColumnRoles:
    """The roles of `columns` (header order) from their profiles and the overrides.

    Raises SettingsError naming an override that is not a feature column, and
    when no column is left as a model input.
    """
    header = list(columns)
    for role in ("numeric", "categorical", "passthrough", "time_features"):
        unknown = [c for c in getattr(settings, role) if c not in header or c == label]
        if unknown:
            flag = "--time-features" if role == "time_features" else f"--{role}-columns"
            raise SettingsError(f"{flag} names {unknown[0]!r}, which is not a feature column "
                                f"(columns: {', '.join(c for c in header if c != label)})")
    forced = {c: (NUMERIC, "--numeric-columns") for c in settings.numeric}
    forced.update({c: (CATEGORICAL, "--categorical-columns") for c in settings.categorical})
    forced.update({c: (PASSTHROUGH, "--passthrough-columns") for c in settings.passthrough})
    for c in settings.time_features:
        if c in forced and forced[c][0] != PASSTHROUGH:
            raise SettingsError(f"--time-features {c}: the column is declared {forced[c][0]}")
        forced.setdefault(c, (PASSTHROUGH, "--time-features"))
    roles: Dict[str, List[str]] = {NUMERIC: [], CATEGORICAL: [], PASSTHROUGH: []}
    why: Dict[str, str] = {}
    for c in header:
        if c == label:
            continue
        role, reason = forced.get(c) or _infer_one(profiles.get(c, ColumnProfile(c)), settings)
        roles[role].append(c)
        why[c] = f"{role}: {reason}"
    if label is not None:
        why[label] = "label: --label-column"
    for c in settings.time_features:
        if profiles.get(c) is not None and profiles[c].datetime < profiles[c].non_empty:
            odd = profiles[c].non_empty - profiles[c].datetime
            raise SettingsError(f"--time-features {c}: {odd:,} of its values in the sample are "
                                f"not ISO 8601 dates/times")
        why[c] += "; also hour-of-day and day-of-week inputs (--time-features)"
    if not (roles[NUMERIC] or roles[CATEGORICAL] or settings.time_features):
        raise SettingsError("no model input: every column is passthrough or the label (" +
                            "; ".join(f"{c}: {why[c]}" for c in header if c in why) + ")")
    return ColumnRoles(label=label, numeric=tuple(roles[NUMERIC]),
                       categorical=tuple(roles[CATEGORICAL]),
                       passthrough=tuple(roles[PASSTHROUGH]),
                       time_features=tuple(settings.time_features),
                       max_categories=settings.max_categories,
                       min_frequency=settings.min_frequency, why=why)


def with_indicators(roles: ColumnRoles, missing_by_column: Mapping[str, int]) -> ColumnRoles:
    """`roles` with a missing-indicator for every numeric column that has empty cells
    (and those it had already)."""
    new = [c for c in roles.numeric if missing_by_column.get(c, 0) > 0
           and c not in roles.indicators]
    cols = tuple(c for c in roles.numeric if c in roles.indicators or c in new)
    why = dict(roles.why)
    for c in cols:
        if missing_by_column.get(c, 0) > 0 and "empty cells" not in why.get(c, ""):
            why[c] = f"{why.get(c, 'numeric')}; {missing_by_column[c]:,} empty cells: " \
                     f"imputed, with a missing-indicator input"
    return replace(roles, indicators=cols, why=why)
